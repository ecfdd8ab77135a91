package gateway

import (
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/gatewayd/gatewayd/configs"
	"go.uber.org/zap"
)

// watchDebounce is how long the watcher waits after the last change it saw
// before reloading: an editor's save or a ConfigMap update is several
// events, and a certificate rotation writes two files.
const watchDebounce = 300 * time.Millisecond

// watchedFiles returns the files a reload of gen re-reads: the
// configuration file, the files the loader read (config.Config.ReadFiles),
// the files its plugins read (plugins.FileUser) and the TLS listener's
// certificate, key and client CA files. Absent for the
// embedded default, which cannot be reloaded.
func (gen *generation) watchedFiles() []string {
	if gen.cfg.File == configs.DefaultName {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if p == "" || seen[p] {
			return
		}
		seen[p] = true
		out = append(out, p)
	}
	add(gen.cfg.File)
	for _, f := range gen.cfg.ReadFiles {
		add(f.Path)
	}
	for _, f := range gen.files {
		add(f.Path)
	}
	// The listener's certificates, which a reload re-reads (tlsState).
	if t := gen.cfg.TLS; t != nil {
		for _, ce := range t.Certificates {
			if ce != nil {
				add(ce.CertFile)
				add(ce.KeyFile)
			}
		}
		if t.ClientAuth != "none" {
			add(t.ClientCAFile)
		}
	}
	return out
}

// syncWatch starts or stops the configuration watcher to match the live
// configuration's watch setting, and points a running one at the files the
// live generation reads. Serve calls it, and so does every successful
// reload once serving: a reload that turns watch on or off applies it.
func (g *Gateway) syncWatch() {
	g.watchMu.Lock()
	defer g.watchMu.Unlock()
	if !g.serving {
		return
	}
	gen := g.cur.Load()
	files := gen.watchedFiles()
	if !gen.cfg.Watch || len(files) == 0 {
		if g.watcher != nil {
			g.watcher.close()
			g.watcher = nil
			g.logger.Info("watch: stopped watching the configuration files")
		}
		return
	}
	if g.watcher == nil {
		w, err := newConfigWatcher(g.logger.Named("watch"), func() {
			res, err := g.Reload()
			g.LogReload("watch", res, err)
		})
		if err != nil {
			g.logger.Error("watch: cannot watch the configuration files; reload with SIGHUP or POST /-/reload", zap.Error(err))
			return
		}
		g.watcher = w
		g.logger.Info("watch: reloading when the configuration files change", zap.Strings("files", files))
	}
	g.watcher.watch(files)
}

// stopWatch stops the configuration watcher, for Shutdown.
func (g *Gateway) stopWatch() {
	g.watchMu.Lock()
	defer g.watchMu.Unlock()
	g.serving = false
	if g.watcher != nil {
		g.watcher.close()
		g.watcher = nil
	}
}

// configWatcher calls reload, debounced, when a watched file changes.
//
// It watches the directories that hold the files, not the files: an editor
// that saves by writing a new file and renaming it over the old one, and a
// Kubernetes ConfigMap update, which swaps a "..data" symlink the file
// names resolve through, replace the file a watch on it would follow. A
// change is any event on a watched file's name, on the name it resolves to
// (symbolic links are resolved again each time the set is updated), or on
// a name starting with ".." (the ConfigMap's own links and directories).
type configWatcher struct {
	w      *fsnotify.Watcher
	logger *zap.Logger
	reload func()
	done   chan struct{}

	mu    sync.Mutex
	dirs  map[string]bool // directories watched
	names map[string]bool // paths whose events count
}

func newConfigWatcher(logger *zap.Logger, reload func()) (*configWatcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	cw := &configWatcher{w: w, logger: logger, reload: reload, done: make(chan struct{}),
		dirs: map[string]bool{}, names: map[string]bool{}}
	go cw.run()
	return cw, nil
}

// watch makes files the watched set: their directories, and those of the
// files they resolve to, are added, and directories no longer needed are
// removed.
func (cw *configWatcher) watch(files []string) {
	dirs, names := map[string]bool{}, map[string]bool{}
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			continue
		}
		names[abs] = true
		dirs[filepath.Dir(abs)] = true
		if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
			names[real] = true
			dirs[filepath.Dir(real)] = true
		}
	}
	cw.mu.Lock()
	defer cw.mu.Unlock()
	for d := range cw.dirs {
		if !dirs[d] {
			// The directory may be gone already (an old ConfigMap version).
			_ = cw.w.Remove(d)
			delete(cw.dirs, d)
		}
	}
	for _, d := range sortedSet(dirs) {
		if cw.dirs[d] {
			continue
		}
		if err := cw.w.Add(d); err != nil {
			cw.logger.Warn("watch: cannot watch a directory", zap.String("dir", d), zap.Error(err))
			continue
		}
		cw.dirs[d] = true
	}
	cw.names = names
}

// relevant reports whether an event on name is a change of a watched file.
func (cw *configWatcher) relevant(name string) bool {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	if cw.names[name] {
		return true
	}
	return strings.HasPrefix(filepath.Base(name), "..") && cw.dirs[filepath.Dir(name)]
}

func (cw *configWatcher) run() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-cw.done:
			return
		case ev, ok := <-cw.w.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod || !cw.relevant(ev.Name) {
				continue
			}
			timer.Reset(watchDebounce)
		case err, ok := <-cw.w.Errors:
			if !ok {
				return
			}
			// An overflow loses events: reload to be sure.
			cw.logger.Warn("watch: event error; reloading to be sure", zap.Error(err))
			timer.Reset(watchDebounce)
		case <-timer.C:
			select {
			case <-cw.done:
				return
			default:
			}
			cw.reload()
		}
	}
}

// close stops the watcher. It does not wait for a reload in progress,
// which may be the caller.
func (cw *configWatcher) close() {
	close(cw.done)
	_ = cw.w.Close()
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
