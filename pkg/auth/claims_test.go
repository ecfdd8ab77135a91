package auth

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestUnixMilliJSON(t *testing.T) {
	tests := []struct {
		give UnixMilli
		want string
	}{
		{1700000000000, "1700000000"},
		{1700000000123, "1700000000.123"},
		{1700000000120, "1700000000.12"},
		{1700000000005, "1700000000.005"},
		{1500, "1.5"},
		{-1500, "-1.5"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			b, err := json.Marshal(tt.give)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Fatalf("marshal = %s, want %s", b, tt.want)
			}
			var back UnixMilli
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if back != tt.give {
				t.Fatalf("round trip = %d, want %d", back, tt.give)
			}
		})
	}
}

func TestParseSecondsMilli(t *testing.T) {
	tests := []struct {
		give   string
		want   int64
		wantOK bool
	}{
		{"1700000000", 1700000000000, true},
		{"1700000000.1", 1700000000100, true},
		{"1700000000.123999", 1700000000123, true},
		{"1.7e9", 1700000000000, true},
		{"0", 0, true},
		{`"1700000000"`, 0, false},
		{"", 0, false},
		{"1.", 0, false},
		{"abc", 0, false},
		{"99999999999999999999", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, ok := ParseSecondsMilli([]byte(tt.give))
			if ok != tt.wantOK || got != tt.want {
				t.Fatalf("ParseSecondsMilli(%q) = %d, %v; want %d, %v", tt.give, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestClaimsJSON(t *testing.T) {
	c := &Claims{
		Issuer: "iss", Subject: "sub", Audience: []string{"api"},
		ExpiresAt: 1700000900000, IssuedAt: 1700000000042, ID: "jti", Type: TypeAccess,
		Email: "a@example.com", Role: "admin",
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"iss":"iss","sub":"sub","aud":"api","exp":1700000900,"iat":1700000000.042,"jti":"jti","typ":"access","email":"a@example.com","role":"admin"}`
	if string(b) != want {
		t.Fatalf("claims JSON:\n%s\nwant\n%s", b, want)
	}
	var back Claims
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.IssuedAt != c.IssuedAt || back.ExpiresAt != c.ExpiresAt || len(back.Audience) != 1 || back.Audience[0] != "api" {
		t.Fatalf("round trip = %+v", back)
	}
	c.Audience = []string{"a", "b"}
	if b, _ := json.Marshal(c); !strings.Contains(string(b), `"aud":["a","b"]`) {
		t.Fatalf("two audiences: %s", b)
	}
	iat, _ := back.GetIssuedAt()
	if !iat.Time.Equal(time.UnixMilli(1700000000042)) {
		t.Fatalf("GetIssuedAt = %v", iat.Time)
	}
}
