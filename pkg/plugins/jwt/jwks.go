package jwt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatewayd/gatewayd/pkg/config"
	"go.uber.org/zap"
)

const (
	// refetchInterval is the least time between two fetches triggered by
	// tokens naming a kid we do not hold, so random kids cannot make the
	// gateway hammer the key server.
	refetchInterval = 10 * time.Second
	// fetchTimeout bounds one JWKS download.
	fetchTimeout = 5 * time.Second
	// maxJWKSBytes bounds a JWKS document.
	maxJWKSBytes = 1 << 20
)

// errFetch wraps every failure to download or decode a remote key set.
var errFetch = errors.New("jwks fetch failed")

// remoteKeys is a JWK Set downloaded from a URL and refreshed in the
// background. It is shared between plugin instances (and generations)
// through plugins.Resources. A failed refresh keeps the last good set.
type remoteKeys struct {
	url     string
	refresh time.Duration
	tr      *http.Transport
	client  *http.Client
	log     *zap.Logger
	now     func() time.Time

	set atomic.Pointer[keySet]
	// gen changes whenever set does; verified-token cache entries record it
	// so tokens are re-verified against a new set.
	gen         atomic.Uint64
	lastAttempt atomic.Int64 // unix ns of the last fetch start

	mu   sync.Mutex // serialises fetches
	hash [sha256.Size]byte

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// newRemoteKeys fetches the set once (a failure is logged, not fatal: the
// gateway keeps trying) and starts the refresh loop.
func newRemoteKeys(url string, refresh time.Duration, log *zap.Logger, now func() time.Time) *remoteKeys {
	ctx, cancel := context.WithCancel(context.Background())
	tr := http.DefaultTransport.(*http.Transport).Clone()
	r := &remoteKeys{
		url:     url,
		refresh: refresh,
		tr:      tr,
		client:  &http.Client{Timeout: fetchTimeout, Transport: tr},
		log:     log.With(zap.String("jwks_url", config.RedactURL(url))),
		now:     now,
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	if err := r.fetch(); err != nil {
		r.log.Warn("jwt: initial JWKS fetch failed; tokens are refused until a fetch succeeds", zap.Error(err))
	}
	go r.loop()
	return r
}

func (r *remoteKeys) loop() {
	defer close(r.done)
	t := time.NewTicker(r.refresh)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
			if err := r.fetch(); err != nil && r.ctx.Err() == nil {
				r.log.Warn("jwt: JWKS refresh failed; keeping the last good key set", zap.Error(err))
			}
		}
	}
}

// Close stops the refresh loop and waits for it to end.
func (r *remoteKeys) Close() error {
	r.cancel()
	<-r.done
	r.tr.CloseIdleConnections()
	return nil
}

// keys returns the current set (nil before the first successful fetch) and
// its generation.
func (r *remoteKeys) keys() (*keySet, uint64) {
	g := r.gen.Load()
	return r.set.Load(), g
}

// refetchUnknown fetches the set again because a token named a kid we do
// not hold, unless a fetch started less than refetchInterval ago. It
// reports whether a fetch succeeded.
func (r *remoteKeys) refetchUnknown() bool {
	now := r.now().UnixNano()
	last := r.lastAttempt.Load()
	if last != 0 && now-last < int64(refetchInterval) {
		return false
	}
	if !r.lastAttempt.CompareAndSwap(last, now) {
		return false
	}
	if err := r.fetch(); err != nil {
		r.log.Warn("jwt: JWKS fetch for an unknown kid failed; keeping the last good key set", zap.Error(err))
		return false
	}
	return true
}

// fetch downloads and installs the set. The previous set stays in place on
// any error.
func (r *remoteKeys) fetch() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastAttempt.Store(r.now().UnixNano())
	ctx, cancel := context.WithTimeout(r.ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", errFetch, redactErr(err))
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", errFetch, redactErr(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: status %d", errFetch, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return fmt.Errorf("%w: read body: %w", errFetch, err)
	}
	if len(body) > maxJWKSBytes {
		return fmt.Errorf("%w: document larger than %d bytes", errFetch, maxJWKSBytes)
	}
	sum := sha256.Sum256(body)
	if r.set.Load() != nil && bytes.Equal(sum[:], r.hash[:]) {
		return nil
	}
	ks, skipped, err := parseJWKS(body)
	if err != nil {
		return fmt.Errorf("%w: %w", errFetch, err)
	}
	if len(skipped) > 0 {
		r.log.Warn("jwt: JWKS keys skipped", zap.String("keys", strings.Join(skipped, "; ")))
	}
	r.hash = sum
	r.set.Store(ks)
	r.gen.Add(1)
	return nil
}

// redactErr hides the credentials and query of the URL that net/http and
// net/url errors quote (the client masks only the password, never the
// query), so a fetch error can be logged.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = config.RedactURL(ue.URL)
	}
	return err
}
