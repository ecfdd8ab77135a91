package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/gatewayd/gatewayd/internal/gatewaytest"
	"github.com/gatewayd/gatewayd/internal/redistest"
)

// TestLockoutConcurrentGuesses fires 40 wrong passwords for one account at
// once through the real binary, on the embedded store and on Redis: no more
// than lockout.max_failures of them are compared before the account locks,
// and the right password is then refused too.
func TestLockoutConcurrentGuesses(t *testing.T) {
	tests := []struct {
		name  string
		redis func(t *testing.T) string
	}{
		{name: "embedded", redis: func(*testing.T) string { return "" }},
		{name: "redis", redis: func(t *testing.T) string {
			return fmt.Sprintf("redis:\n  addrs: [%q]", redistest.Start(t).Addr())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A bcrypt cost that takes a few ms keeps the guesses in flight
			// together, as they would be at the production cost.
			cfg := strings.Replace(authConfig, "bcrypt_cost: 4", "bcrypt_cost: 8\n  lockout: { max_failures: 5, window: 15m }", 1)
			gw := gatewaytest.Start(t, fmt.Sprintf(cfg, tt.redis(t), startEcho(t, "echo")),
				gatewaytest.Options{Env: []string{"JWT_SECRET=" + testSecret}})
			const email, pw = "victim@example.com", "correct-Horse-42"
			signup(t, gw, email, pw)

			const n = 40
			body := jsonBody(map[string]string{"email": email, "password": "Wrong-guess-99"})
			statuses := make([]int, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					res, err := client.Post(gw.URL("/v1/auth/login"), "application/json", strings.NewReader(body))
					if err != nil {
						t.Error(err)
						return
					}
					_ = res.Body.Close()
					statuses[i] = res.StatusCode
				})
			}
			close(start)
			wg.Wait()
			var evaluated, locked int
			for _, st := range statuses {
				switch st {
				case http.StatusUnauthorized:
					evaluated++
				case http.StatusTooManyRequests:
					locked++
				default:
					t.Errorf("a wrong guess answered %d", st)
				}
			}
			t.Logf("%d concurrent wrong guesses: %d evaluated, %d refused as locked", n, evaluated, locked)
			if evaluated > 5 || evaluated+locked != n {
				t.Fatalf("%d concurrent wrong guesses: %d evaluated, %d locked; want at most 5 evaluated", n, evaluated, locked)
			}
			r := do(t, "POST", gw.URL("/v1/auth/login"), jsonHdr, jsonBody(map[string]string{"email": email, "password": pw}))
			if r.Status != http.StatusTooManyRequests || decodeError(t, r).Error != "account_locked" {
				t.Fatalf("right password after the lock: %d %s, want 429 account_locked", r.Status, r.Body)
			}
		})
	}
}
