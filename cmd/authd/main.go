// Command authd is the auth service of SPEC §6 as a standalone process:
//
//	authd -config auth.yaml          serve (SIGTERM/SIGINT: graceful stop)
//	authd -config auth.yaml -check   validate the file and exit
//	authd -version
//	authd user add --email a@b.c [--role admin] [-config auth.yaml]
//
// The file has an auth: section (the same keys as gateway.yaml's), an
// optional redis: section and listen: (default ":9000"). Without redis:,
// users live in the bbolt file auth.users_file and revocations only in this
// process, where no gateway can see them.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gatewayd/gatewayd/internal/sdnotify"
	"github.com/gatewayd/gatewayd/pkg/apierror"
	"github.com/gatewayd/gatewayd/pkg/auth"
	"github.com/gatewayd/gatewayd/pkg/authserver"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/gatewayd/gatewayd/pkg/store/bolt"
	"github.com/gatewayd/gatewayd/pkg/store/memory"
	"github.com/gatewayd/gatewayd/pkg/store/redis"
	"github.com/google/uuid"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/crypto/bcrypt"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const defaultConfig = "auth.yaml"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "user" {
		return runUser(args[1:], stdin, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "apikey" {
		return runAPIKey(args[1:], nil, stdout, stderr)
	}
	fs := flag.NewFlagSet("authd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", defaultConfig, "configuration file")
	check := fs.Bool("check", false, "validate the configuration, print every error and exit (0 valid, 1 invalid)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "authd: unexpected argument %q (subcommands: user add, apikey)\n", fs.Arg(0))
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, "authd", version)
		return 0
	}
	fc, err := loadConfig(*path)
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	if *check {
		fmt.Fprintln(stdout, "configuration OK")
		return 0
	}
	logger, err := newLogger(fc.Log)
	if err != nil {
		fmt.Fprintln(stderr, "authd:", err)
		return 1
	}
	defer func() { _ = logger.Sync() }()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := serve(fc, logger, sigs); err != nil {
		logger.Error("authd stopped", zap.Error(err))
		return 1
	}
	return 0
}

func printErrors(w io.Writer, err error) {
	for _, e := range config.Errors(err) {
		fmt.Fprintln(w, e)
	}
}

// fileConfig is authd's configuration file.
type fileConfig struct {
	Listen          string          `yaml:"listen"`
	ShutdownTimeout config.Duration `yaml:"shutdown_timeout"`
	Log             logConfig       `yaml:"log"`
	Auth            *config.Auth    `yaml:"auth"`
	Redis           *config.Redis   `yaml:"redis"`
	Meta            config.Meta     `yaml:"-"`
}

// logConfig configures zap.
type logConfig struct {
	Level  string      `yaml:"level"`
	Format string      `yaml:"format"`
	Meta   config.Meta `yaml:"-"`
}

// Defaults of authd's own keys.
const (
	defaultListen          = ":9000"
	defaultShutdownTimeout = 30 * time.Second
)

// loadConfig reads, expands ${VAR}, strictly decodes, defaults and
// validates the file; every mistake is returned, each at its line.
func loadConfig(path string) (*fileConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	root, err := config.ParseNode(path, data)
	if err != nil {
		return nil, err
	}
	var fc fileConfig
	// Validation below adds what decoding could not see, without repeating
	// a field decoding already reported (config.Merge).
	decodeErr := errors.Join(config.ExpandEnv(path, root), config.DecodeStrict(path, root, "", &fc))
	var errs []error
	if fc.Listen == "" && !fc.Meta.Has("listen") {
		fc.Listen = defaultListen
	}
	if fc.ShutdownTimeout == 0 && !fc.Meta.Has("shutdown_timeout") {
		fc.ShutdownTimeout = config.Duration(defaultShutdownTimeout)
	}
	if fc.Log.Level == "" {
		fc.Log.Level = "info"
	}
	if fc.Log.Format == "" {
		fc.Log.Format = "json"
	}
	if _, _, err := net.SplitHostPort(fc.Listen); err != nil {
		errs = append(errs, config.Errorf(path, fc.Meta.Pos("listen"), "listen", "expected host:port such as :9000, got "+strconv.Quote(fc.Listen)))
	}
	if _, err := zapcore.ParseLevel(fc.Log.Level); err != nil {
		errs = append(errs, config.Errorf(path, fc.Log.Meta.Pos("level"), "log.level", "expected debug, info, warn or error, got "+strconv.Quote(fc.Log.Level)))
	}
	if fc.Log.Format != "json" && fc.Log.Format != "console" {
		errs = append(errs, config.Errorf(path, fc.Log.Meta.Pos("format"), "log.format", "expected json or console, got "+strconv.Quote(fc.Log.Format)))
	}
	if fc.Redis != nil {
		errs = append(errs, fc.Redis.Validate(path))
	}
	if fc.Auth == nil {
		errs = append(errs, config.Errorf(path, root, "auth", "the auth: section is required"))
	} else {
		errs = append(errs, authserver.Validate(fc.Auth, path))
	}
	if err := config.Merge(decodeErr, errors.Join(errs...)); err != nil {
		return nil, err
	}
	return &fc, nil
}

func newLogger(lc logConfig) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(lc.Level)
	if err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	zc := zap.NewProductionConfig()
	zc.Level = zap.NewAtomicLevelAt(level)
	zc.Encoding = lc.Format
	if lc.Format == "console" {
		zc.EncoderConfig = zap.NewDevelopmentEncoderConfig()
	}
	return zc.Build()
}

// stores are the state authd serves from, and how to release it.
type stores struct {
	users store.AuthStore
	rev   store.Revocations
	close func() error
}

func openStores(fc *fileConfig, logger *zap.Logger) (*stores, error) {
	if fc.Redis != nil {
		rs, err := redis.New(fc.Redis)
		if err != nil {
			return nil, err
		}
		// Every store call goes through one guard: deadline, in-flight
		// cap and breaker.
		gs := redis.Guard(rs, fc.Redis)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := gs.Ping(ctx); err != nil {
			_ = gs.Close()
			return nil, fmt.Errorf("redis: ping: %w", err)
		}
		logger.Info("state in redis", zap.Strings("addrs", config.RedactURLs(fc.Redis.Addrs)))
		return &stores{users: gs.Auth(), rev: gs, close: gs.Close}, nil
	}
	b, err := bolt.Open(fc.Auth.UsersFile)
	if err != nil {
		return nil, err
	}
	mem := memory.New()
	logger.Warn("no redis: section: users are kept in " + fc.Auth.UsersFile +
		", but revocations (logout, logout-all, refresh reuse) live only in this process;" +
		" a gateway cannot see them, so revoked access tokens stay valid there until they expire." +
		" Configure redis: to share revocations with the gateway.")
	return &stores{users: b, rev: mem, close: func() error {
		return errors.Join(b.Close(), mem.Close())
	}}, nil
}

var pathHealthz = []byte("/healthz")

// serve runs the service until a SIGINT or SIGTERM arrives on sigs, then
// shuts down gracefully; a second one exits at once.
func serve(fc *fileConfig, logger *zap.Logger, sigs <-chan os.Signal) (err error) {
	st, err := openStores(fc, logger)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := st.close(); cerr != nil && err == nil {
			err = fmt.Errorf("close stores: %w", cerr)
		}
	}()
	as, err := authserver.New(fc.Auth, st.users, st.rev, logger)
	if err != nil {
		return err
	}
	defer func() { _ = as.Close() }()
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			if string(ctx.Path()) == string(pathHealthz) {
				ctx.SetContentType("text/plain; charset=utf-8")
				ctx.SetBodyString("ok\n")
				return
			}
			as.Handle(ctx)
		},
		ErrorHandler:          requestError,
		Name:                  "authd",
		NoDefaultServerHeader: true,
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          10 * time.Second,
		IdleTimeout:           60 * time.Second,
		MaxRequestBodySize:    1 << 20,
		Logger:                zap.NewStdLog(logger.Named("fasthttp")),
	}
	ln, err := net.Listen("tcp", fc.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	logger.Info("authd listening", zap.String("addr", ln.Addr().String()),
		zap.String("alg", as.Key().Algorithm()), zap.String("version", version))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	// Under systemd (Type=notify): ready once the stores are open and the
	// listener accepts connections.
	sd, err := sdnotify.Open()
	if err != nil {
		logger.Warn("systemd notifications disabled", zap.Error(err))
	}
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
		case err := <-served:
			return fmt.Errorf("serve: %w", err)
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				logger.Info("SIGHUP ignored: authd does not reload its configuration; restart it to apply changes")
				continue
			}
			logger.Info("shutting down", zap.String("signal", sig.String()))
			notify(logger, sd.Stopping)
			return shutdown(srv, served, sigs, fc.ShutdownTimeout.D())
		}
	}
}

// notify sends one state change to systemd; a failure is logged, since the
// service runs either way.
func notify(logger *zap.Logger, send func() error) {
	if err := send(); err != nil {
		logger.Warn("systemd notification failed", zap.Error(err))
	}
}

// errForced is returned when a second signal cut the shutdown short.
var errForced = errors.New("second signal: exiting without waiting for requests")

func shutdown(srv *fasthttp.Server, served <-chan error, sigs <-chan os.Signal, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.ShutdownWithContext(ctx) }()
	for {
		select {
		case err := <-done:
			<-served
			if err != nil {
				return fmt.Errorf("shutdown: %w", err)
			}
			return nil
		case sig := <-sigs:
			if sig != syscall.SIGHUP {
				return errForced
			}
		}
	}
}

// requestError answers requests fasthttp could not parse with SPEC §5 JSON.
func requestError(ctx *fasthttp.RequestCtx, err error) {
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		apierror.Write(ctx, fasthttp.StatusRequestEntityTooLarge, apierror.CodePayloadTooLarge, "the request body is too large")
		return
	}
	apierror.Write(ctx, fasthttp.StatusBadRequest, apierror.CodeBadRequest, "malformed HTTP request")
}

// runUser implements "authd user add".
func runUser(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "add" {
		fmt.Fprintln(stderr, "usage: authd user add --email EMAIL [--role ROLE] [-config FILE] (password on stdin, or generated)")
		return 2
	}
	fs := flag.NewFlagSet("authd user add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", defaultConfig, "configuration file")
	emailFlag := fs.String("email", "", "the account's email (required)")
	role := fs.String("role", authserver.RoleUser, "the account's role, e.g. admin")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if err := addUser(*path, *emailFlag, *role, stdin, stdout); err != nil {
		printErrors(stderr, err)
		return 1
	}
	return 0
}

// errRole is returned for a role outside [a-z0-9_-]{1,32}.
var errRole = errors.New("role must be 1-32 characters of a-z, 0-9, _ and -")

func validRole(r string) bool {
	if r == "" || len(r) > 32 {
		return false
	}
	for i := 0; i < len(r); i++ {
		c := r[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func addUser(path, rawEmail, role string, stdin io.Reader, stdout io.Writer) error {
	email, err := auth.NormalizeEmail(rawEmail)
	if err != nil {
		return err
	}
	if !validRole(role) {
		return errRole
	}
	fc, err := loadConfig(path)
	if err != nil {
		return err
	}
	password, generated, err := readPassword(stdin, email)
	if err != nil {
		return err
	}
	if err := auth.CheckPassword(password, email); err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), fc.Auth.BcryptCost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	st, err := openStores(fc, zap.NewNop())
	if err != nil {
		return err
	}
	defer func() { _ = st.close() }()
	u := &store.User{ID: uuid.NewString(), Email: email, Role: role, PasswordHash: hash, CreatedAt: time.Now()}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := st.users.CreateUser(ctx, u); err != nil {
		if errors.Is(err, store.ErrExists) {
			return fmt.Errorf("an account with email %s already exists", email)
		}
		return err
	}
	fmt.Fprintf(stdout, "created user %s (%s, role %s)\n", u.ID, u.Email, u.Role)
	if generated {
		fmt.Fprintf(stdout, "password: %s\n", password)
	}
	return nil
}

// readPassword reads the first line of stdin; when stdin is a terminal (or
// /dev/null) it generates a password instead.
func readPassword(stdin io.Reader, email string) (password string, generated bool, err error) {
	if f, ok := stdin.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p, err := generatePassword(email)
			return p, true, err
		}
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", false, fmt.Errorf("read password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", false, errors.New("no password on stdin: pipe one in, or run from a terminal to generate one")
	}
	return line, false, nil
}

const passwordAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-_.!"

// generatePassword returns 20 random characters that pass the policy.
func generatePassword(email string) (string, error) {
	n := big.NewInt(int64(len(passwordAlphabet)))
	for {
		b := make([]byte, 20)
		for i := range b {
			x, err := rand.Int(rand.Reader, n)
			if err != nil {
				return "", fmt.Errorf("generate password: %w", err)
			}
			b[i] = passwordAlphabet[x.Int64()]
		}
		if p := string(b); auth.CheckPassword(p, email) == nil {
			return p, nil
		}
	}
}
