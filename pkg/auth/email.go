package auth

import (
	"errors"
	"strings"
)

// Email limits (RFC 5321 §4.5.3.1).
const (
	MaxEmailBytes     = 254
	maxLocalPartBytes = 64
	maxLabelBytes     = 63
)

// ErrInvalidEmail is returned for an address NormalizeEmail rejects.
var ErrInvalidEmail = errors.New("email must be a valid address such as name@example.com")

// NormalizeEmail checks that s is a plain ASCII address local@domain (a
// dot-atom local part, a domain of at least two DNS labels) and returns it
// lowercased, the form accounts are stored and looked up by.
func NormalizeEmail(s string) (string, error) {
	if len(s) == 0 || len(s) > MaxEmailBytes {
		return "", ErrInvalidEmail
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at > maxLocalPartBytes || at == len(s)-1 {
		return "", ErrInvalidEmail
	}
	local, domain := s[:at], s[at+1:]
	if !validLocalPart(local) || !validDomain(domain) {
		return "", ErrInvalidEmail
	}
	return strings.ToLower(s), nil
}

func validLocalPart(s string) bool {
	if s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlnum(c) || c == '.' || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

func validDomain(s string) bool {
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > maxLabelBytes || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			if !isAlnum(l[i]) && l[i] != '-' {
				return false
			}
		}
	}
	// A top-level domain is never all digits ("1.2.3.4" is no domain).
	tld := labels[len(labels)-1]
	return strings.TrimLeft(tld, "0123456789") != ""
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
