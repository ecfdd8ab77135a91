package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckPassword(t *testing.T) {
	tests := []struct {
		name      string
		give      string
		giveEmail string
		want      error
	}{
		{"good", "Correct-Horse-42", "alice@example.com", nil},
		{"two classes are enough", "correcthorse42", "alice@example.com", nil},
		{"exactly 10 chars", "abcdefghi1", "alice@example.com", nil},
		{"exactly 72 bytes", strings.Repeat("a1", 36), "alice@example.com", nil},
		{"multi-byte letters count as characters", "ééééééééé1", "alice@example.com", nil},
		{"9 chars", "abcdefgh1", "alice@example.com", ErrPasswordTooShort},
		{"empty", "", "alice@example.com", ErrPasswordTooShort},
		{"73 bytes", strings.Repeat("a1", 36) + "b", "alice@example.com", ErrPasswordTooLong},
		{"72 chars but 144 bytes", strings.Repeat("é", 72), "alice@example.com", ErrPasswordTooLong},
		{"all lowercase", "correcthorsebattery", "alice@example.com", ErrPasswordOneClass},
		{"all uppercase", "CORRECTHORSEBATTERY", "alice@example.com", ErrPasswordOneClass},
		{"all digits", "12345678901234", "alice@example.com", ErrPasswordOneClass},
		{"all symbols", "!@#$%^&*()_+", "alice@example.com", ErrPasswordOneClass},
		{"one repeated char", "aaaaaaaaaaaa", "alice@example.com", ErrPasswordOneClass},
		{"contains local part", "Alice-2024-pw", "alice@example.com", ErrPasswordHasLocalPart},
		{"equals local part", "Alice.Smith1", "alice.smith1@example.com", ErrPasswordHasLocalPart},
		{"short local part is not searched", "Xa-password-1", "xa@example.com", nil},
		{"invalid UTF-8", "abcdefghi1\xff", "alice@example.com", ErrPasswordNotUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := CheckPassword(tt.give, tt.giveEmail); !errors.Is(err, tt.want) {
				t.Fatalf("CheckPassword(%q) = %v, want %v", tt.give, err, tt.want)
			}
		})
	}
}

func TestNormalizeEmail(t *testing.T) {
	tests := []struct {
		give string
		want string
	}{
		{give: "Alice@Example.COM", want: "alice@example.com"},
		{give: "first.last+tag@sub.example.co.uk", want: "first.last+tag@sub.example.co.uk"},
		{give: "o'brien@example.ie", want: "o'brien@example.ie"},
		{give: "x@b.io", want: "x@b.io"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, err := NormalizeEmail(tt.give)
			if err != nil || got != tt.want {
				t.Fatalf("NormalizeEmail(%q) = %q, %v; want %q", tt.give, got, err, tt.want)
			}
		})
	}
}

func TestNormalizeEmailRejects(t *testing.T) {
	tests := []string{
		"",
		"plain",
		"@example.com",
		"a@",
		"a@localhost",
		"a@1.2.3.4",
		"a@-bad.com",
		"a@bad..com",
		".a@example.com",
		"a..b@example.com",
		"a b@example.com",
		" a@example.com",
		"Name <a@example.com>",
		"a@b@example.com",
		"ü@example.com",
		strings.Repeat("a", 65) + "@example.com",
		"a@" + strings.Repeat("b", 64) + ".com",
	}
	for _, tt := range tests {
		t.Run(tt, func(t *testing.T) {
			if got, err := NormalizeEmail(tt); !errors.Is(err, ErrInvalidEmail) {
				t.Fatalf("NormalizeEmail(%q) = %q, %v; want ErrInvalidEmail", tt, got, err)
			}
		})
	}
}
