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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/metrics"
	"go.uber.org/zap"
)

const (
	// fetchTimeout bounds one JWKS download.
	fetchTimeout = 5 * time.Second
	// maxJWKSBytes bounds a JWKS document.
	maxJWKSBytes = 1 << 20
)

// errFetch wraps every failure to download or decode a remote key set.
var errFetch = errors.New("jwks fetch failed")

// remoteOptions say where a provider's key set is and how often to fetch it.
type remoteOptions struct {
	url string
	// refresh is the longest time between two fetches; a response's
	// Cache-Control max-age shortens it, down to refetch.
	refresh time.Duration
	// refetch is the least time between two fetches triggered by tokens
	// naming a kid we do not hold, so random kids cannot make the gateway
	// hammer the key server.
	refetch time.Duration
	// provider labels the metrics.
	provider string
}

// remoteKeys is a JWK Set downloaded from a URL and refreshed in the
// background: every refresh interval, sooner when the response's
// Cache-Control max-age says so, and when a token names an unknown kid. It
// is shared between plugin instances (and generations) through
// plugins.Resources. A failed refresh keeps the last good set.
type remoteKeys struct {
	remoteOptions
	tr     *http.Transport
	client *http.Client
	log    *zap.Logger
	now    func() time.Time

	set atomic.Pointer[keySet]
	// gen changes whenever set does; verified-token cache entries record it
	// so tokens are re-verified against a new set.
	gen         atomic.Uint64
	lastAttempt atomic.Int64 // unix ns of the last fetch start
	// next is how long the loop waits for the next refresh, in ns: refresh,
	// or the last response's max-age when shorter.
	next atomic.Int64

	keysGauge *vm.Gauge
	errors    *vm.Counter

	mu      sync.Mutex // serialises fetches
	hash    [sha256.Size]byte
	lastErr string

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// newRemoteKeys fetches the set once (a failure is logged, not fatal: the
// gateway keeps trying, and gateway_jwks_keys stays 0) and starts the
// refresh loop.
func newRemoteKeys(o remoteOptions, log *zap.Logger, now func() time.Time) *remoteKeys {
	ctx, cancel := context.WithCancel(context.Background())
	tr := http.DefaultTransport.(*http.Transport).Clone()
	r := &remoteKeys{
		remoteOptions: o,
		tr:            tr,
		client:        &http.Client{Timeout: fetchTimeout, Transport: tr},
		log:           log.With(zap.String("provider", o.provider), zap.String("jwks_url", config.RedactURL(o.url))),
		now:           now,
		keysGauge:     metrics.JWKSKeys(o.provider),
		errors:        metrics.JWKSRefreshErrors(o.provider),
		ctx:           ctx,
		cancel:        cancel,
		done:          make(chan struct{}),
	}
	r.next.Store(int64(o.refresh))
	if err := r.fetch(); err != nil {
		r.log.Warn("jwt: initial JWKS fetch failed; the provider's tokens are refused until a fetch succeeds", zap.Error(err))
	}
	go r.loop()
	return r
}

func (r *remoteKeys) loop() {
	defer close(r.done)
	t := time.NewTimer(time.Duration(r.next.Load()))
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
			if err := r.fetch(); err != nil && r.ctx.Err() == nil {
				if ks, _ := r.keys(); ks == nil {
					r.log.Warn("jwt: JWKS fetch failed; the provider still has no key set and its tokens are refused", zap.Error(err))
				} else {
					r.log.Warn("jwt: JWKS refresh failed; keeping the last good key set", zap.Error(err))
				}
			}
			t.Reset(time.Duration(r.next.Load()))
		}
	}
}

// lastError describes the last failed fetch ("" after a success).
func (r *remoteKeys) lastError() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
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
// not hold, unless a fetch started less than the refetch interval ago. It
// reports whether a fetch succeeded.
func (r *remoteKeys) refetchUnknown() bool {
	now := r.now().UnixNano()
	last := r.lastAttempt.Load()
	if last != 0 && now-last < int64(r.refetch) {
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
	err := r.download()
	if err != nil {
		r.errors.Inc()
		r.lastErr = err.Error()
		// Try again sooner than a full refresh: the keys may be missing.
		r.next.Store(int64(min(r.refresh, max(r.refetch, time.Minute))))
		return err
	}
	r.lastErr = ""
	return nil
}

// download does one fetch; the caller holds mu.
func (r *remoteKeys) download() error {
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
	r.next.Store(int64(r.interval(resp.Header.Get("Cache-Control"))))
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
	r.keysGauge.Set(float64(len(ks.all)))
	return nil
}

// interval is the time until the next refresh after a response with the
// given Cache-Control: its max-age when shorter than the refresh interval,
// but never under the refetch interval (no-cache, no-store and max-age=0
// count as 0). Without max-age it is the refresh interval.
func (r *remoteKeys) interval(cc string) time.Duration {
	d, ok := maxAge(cc)
	if !ok {
		return r.refresh
	}
	return min(r.refresh, max(r.refetch, d))
}

// maxAge reads the max-age directive of a Cache-Control value (RFC 9111
// §5.2.2.1); no-cache and no-store mean 0.
func maxAge(cc string) (time.Duration, bool) {
	found, age := false, time.Duration(0)
	for _, part := range strings.Split(cc, ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "no-cache", "no-store":
			return 0, true
		case "max-age":
			n, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(val), `"`), 10, 64)
			if err != nil || n < 0 {
				continue
			}
			found, age = true, time.Duration(min(n, int64(365*24*3600)))*time.Second
		}
	}
	return age, found
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
