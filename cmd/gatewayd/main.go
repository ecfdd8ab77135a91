// Command gatewayd is the API gateway: a fasthttp reverse proxy configured by
// one YAML file. See README.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/gatewayd/gatewayd/configs"
	"github.com/gatewayd/gatewayd/internal/sdnotify"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/gateway"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
	"go.uber.org/zap"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gatewayd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (default: configs/gateway.yaml, else the embedded default; required with -check)")
	check := fs.Bool("check", false, "validate the -config file, print every warning and error and exit (0 valid, 1 invalid)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, "gatewayd", version)
		return 0
	}
	if *check && *path == "" {
		// Falling back to configs/gateway.yaml or the embedded default
		// would report on a file the operator did not name.
		fmt.Fprintln(stderr, "gatewayd: -check needs -config FILE, the file to validate")
		return 2
	}
	cfg, err := load(*path)
	if *check {
		// Plugin errors are reported with the file's, so one pass shows
		// everything.
		warnings, err := gateway.CheckWarnings(cfg, err, builtin.Registry())
		for _, w := range warnings {
			fmt.Fprintln(stderr, w)
		}
		if err != nil {
			printErrors(stderr, err)
			return 1
		}
		fmt.Fprintln(stdout, "configuration OK")
		return 0
	}
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	if err := serve(cfg); err != nil {
		fmt.Fprintln(stderr, "gatewayd:", err)
		return 1
	}
	return 0
}

func load(path string) (*config.Config, error) {
	if path == "" {
		if _, err := os.Stat("configs/gateway.yaml"); err == nil {
			path = "configs/gateway.yaml"
		} else {
			return config.Parse(configs.DefaultName, configs.Default)
		}
	}
	return config.Load(path)
}

func printErrors(w io.Writer, err error) {
	errs := config.Errors(err)
	for _, e := range errs {
		fmt.Fprintln(w, e)
	}
	if len(errs) > 1 {
		fmt.Fprintf(w, "%d errors\n", len(errs))
	}
}

func serve(cfg *config.Config) error {
	logger, err := gateway.NewLogger(cfg.Log)
	if err != nil {
		return err
	}
	defer func() { _ = logger.Sync() }()

	app, err := gateway.Open(cfg, builtin.Registry(), logger, version)
	if err != nil {
		for _, e := range config.Errors(err) {
			logger.Error(e.Error())
		}
		return errors.New("could not start; see the errors above")
	}
	defer app.Close()

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	adminLn, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		ln.Close()
		return err
	}
	ls := gateway.Listeners{Client: ln, Admin: adminLn}
	if cfg.RedirectHTTP != "" {
		if ls.Redirect, err = net.Listen("tcp", cfg.RedirectHTTP); err != nil {
			ln.Close()
			adminLn.Close()
			return err
		}
	}
	gw := app.Gateway
	fields := []zap.Field{zap.String("version", version), zap.String("config", cfg.File),
		zap.String("listen", ln.Addr().String()), zap.Bool("tls", cfg.TLS != nil), zap.String("admin", adminLn.Addr().String()),
		zap.Int("routes", len(cfg.Routes))}
	if ls.Redirect != nil {
		fields = append(fields, zap.String("redirect_http", ls.Redirect.Addr().String()))
	}
	logger.Info("gatewayd started", fields...)

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	errc := make(chan error, 1)
	go func() { errc <- gw.ServeListeners(ls) }()

	// Under systemd (Type=notify) the unit is started once the
	// configuration is loaded and both listeners accept connections.
	sd := notifier(logger)
	defer sd.Close()
	stopWatchdog, err := sd.StartWatchdog(func(err error) {
		logger.Warn("systemd watchdog: notification failed", zap.Error(err))
	})
	if err != nil {
		logger.Warn("systemd watchdog disabled", zap.Error(err))
	}
	defer stopWatchdog()
	notify(logger, sd.Ready)

	for {
		select {
		case err := <-errc:
			return err
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				notify(logger, sd.Reloading)
				res, err := gw.Reload()
				gw.LogReload("SIGHUP", res, err)
				// A rejected file leaves the previous configuration
				// serving: ready either way.
				notify(logger, sd.Ready)
				continue
			}
			notify(logger, sd.Stopping)
			return shutdown(gw, logger, sig, sigs)
		}
	}
}

// notifier opens the systemd notification socket, if any; a failure is
// logged and leaves notifications off.
func notifier(logger *zap.Logger) *sdnotify.Notifier {
	sd, err := sdnotify.Open()
	if err != nil {
		logger.Warn("systemd notifications disabled", zap.Error(err))
	}
	return sd
}

// notify sends one state change to systemd; a failure is logged, since the
// gateway serves either way.
func notify(logger *zap.Logger, send func() error) {
	if err := send(); err != nil {
		logger.Warn("systemd notification failed", zap.Error(err))
	}
}

// shutdown drains; a second SIGTERM/SIGINT exits at once.
func shutdown(gw *gateway.Gateway, logger *zap.Logger, sig os.Signal, sigs chan os.Signal) error {
	live := gw.Config()
	logger.Info("shutting down: draining in-flight requests", zap.String("signal", sig.String()),
		zap.Duration("shutdown_timeout", live.Server.ShutdownTimeout.D()))
	done := make(chan error, 1)
	go func() {
		done <- gw.Shutdown(live.Server.ShutdownDelay.D(), live.Server.ShutdownTimeout.D())
	}()
	for {
		select {
		case err := <-done:
			if err != nil {
				return err
			}
			logger.Info("shutdown complete")
			return nil
		case s := <-sigs:
			if s == syscall.SIGHUP {
				continue
			}
			logger.Warn("second signal: exiting now", zap.String("signal", s.String()))
			_ = logger.Sync()
			os.Exit(1)
		}
	}
}
