package metrics

import (
	"sync"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
)

// TLSCertificate is one certificate the TLS listener serves, as
// gateway_tls_certificate_expiry_seconds reports it.
type TLSCertificate struct {
	// Name is the label value: the certificate's subject CN, else its
	// first DNS name, else its file's base name.
	Name     string
	NotAfter time.Time
}

var tlsCerts struct {
	mu sync.Mutex // serialises SetTLSCertificates
	// live maps name -> notAfter of the served set; the gauges read it
	// without a lock, so a scrape never waits for (or on) a reload.
	live atomic.Pointer[map[string]time.Time]
}

// SetTLSCertificates replaces the series of
// gateway_tls_certificate_expiry_seconds{name} with those of certs: the
// seconds until each one's notAfter, computed at scrape time (negative once
// expired). Series of certificates no longer served are removed.
func SetTLSCertificates(certs []TLSCertificate) {
	tlsCerts.mu.Lock()
	defer tlsCerts.mu.Unlock()
	next := make(map[string]time.Time, len(certs))
	for _, c := range certs {
		next[c.Name] = c.NotAfter
	}
	var old map[string]time.Time
	if p := tlsCerts.live.Swap(&next); p != nil {
		old = *p
	}
	for name := range old {
		if _, ok := next[name]; !ok {
			vm.UnregisterMetric(tlsExpiryName(name))
		}
	}
	for name := range next {
		if _, ok := old[name]; ok {
			continue
		}
		vm.GetOrCreateGauge(tlsExpiryName(name), func() float64 {
			t, ok := (*tlsCerts.live.Load())[name]
			if !ok {
				return 0
			}
			return time.Until(t).Seconds()
		})
	}
}

func tlsExpiryName(name string) string {
	return `gateway_tls_certificate_expiry_seconds{name="` + quote(name) + `"}`
}
