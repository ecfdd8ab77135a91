package config

import (
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	tests := []struct {
		give string
		want string
	}{
		{give: "https://idp.example.com/.well-known/jwks.json", want: "https://idp.example.com/.well-known/jwks.json"},
		{give: "https://user:pass@idp.example.com/jwks?api_key=SECRET", want: "https://redacted@idp.example.com/jwks?redacted"},
		{give: "https://token@idp.example.com/jwks", want: "https://redacted@idp.example.com/jwks"},
		{give: "http://127.0.0.1:1/jwks?api_key=SECRET#frag", want: "http://127.0.0.1:1/jwks?redacted"},
		{give: "http://127.0.0.1:1/jwks?", want: "http://127.0.0.1:1/jwks?redacted"},
		{give: "redis://:pass@10.0.0.1:6379/0", want: "redis://redacted@10.0.0.1:6379/0"},
		{give: "http://u:p@ss@host:80/", want: "http://redacted@host:80/"},
		{give: "http://u:p#ss/x@host:80/", want: "http://redacted@host:80/"},
		{give: "http://u:p ss@host/?k=v", want: "http://redacted@host/?redacted"},
		{give: "user:pass@10.0.0.1:6379", want: "redacted@10.0.0.1:6379"},
		{give: "10.0.0.1:6379", want: "10.0.0.1:6379"},
		{give: "%zz://user:pass@host/?api_key=SECRET", want: "%zz://redacted@host/?redacted"},
		{give: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got := RedactURL(tt.give)
			if got != tt.want {
				t.Fatalf("RedactURL(%q) = %q, want %q", tt.give, got, tt.want)
			}
			for _, secret := range []string{"pass", "SECRET", "p#ss", "p@ss", "p ss", "token"} {
				if strings.Contains(tt.give, secret) && strings.Contains(got, secret) {
					t.Fatalf("RedactURL(%q) = %q still holds %q", tt.give, got, secret)
				}
			}
		})
	}
}

// TestRedisAddrErrorHidesCredentials: an address written as a URL with a
// password is refused without quoting the password.
func TestRedisAddrErrorHidesCredentials(t *testing.T) {
	tests := []struct {
		name string
		give string
	}{
		{name: "url", give: `  addrs: ["redis://:hunter2@10.0.0.1:6379"]`},
		{name: "userinfo", give: `  addrs: ["hunter2@10.0.0.1:6379"]`},
		{name: "sentinel", give: "  sentinel:\n    master_set: main\n    addrs: [\"u:hunter2@10.0.0.1:26379\"]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("gw.yaml", []byte(redisBase+tt.give+"\n"))
			if err == nil {
				t.Fatal("an address with a password was accepted")
			}
			if msg := err.Error(); strings.Contains(msg, "hunter2") || !strings.Contains(msg, "10.0.0.1:") {
				t.Fatalf("error %q: want the address without its password", msg)
			}
		})
	}
}
