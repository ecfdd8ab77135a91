package auth

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// MinSecretBits is the least estimated entropy of an HMAC secret: with less,
// the secret can be guessed offline from any token it signed.
const MinSecretBits = 128

// SecretAdvice says how to generate a good secret; the configuration
// errors about weak secrets end with it.
const SecretAdvice = "generate one with: head -c 48 /dev/urandom | base64"

// Weak-secret errors. CheckSecret wraps them with the detail.
var (
	ErrPlaceholderSecret = errors.New("looks like a placeholder, not a secret")
	ErrRepetitiveSecret  = errors.New("is a repeated pattern")
	ErrLowEntropySecret  = errors.New("has too little entropy")
)

// placeholderWords are found in secrets people type or leave in place. They
// are matched in the secret lowercased with everything but letters and
// digits removed, so REPLACE_ME, Change-Me and "my secret" all match. A
// random secret contains one now and then (a five-letter word turns up in
// about one random 64-character base64 secret in 500 000), so a word only
// refuses a secret whose remainder is too weak on its own.
var placeholderWords = []string{
	"replaceme", "changeme", "changeit", "placeholder", "secret", "password",
	"passwd", "example", "sample", "dummy", "default", "xxxxxx", "123456",
	"abcdef", "qwerty",
}

// maxPeriod is the longest pattern whose repetition CheckSecret looks for.
const maxPeriod = 32

// CheckSecret reports why secret is a weak HMAC key, or nil. Besides the
// length (at least MinSecretBytes) it refuses:
//
//   - placeholders: the secret contains one of placeholderWords and what
//     remains without them (letters and digits) would not pass the length
//     and entropy checks on its own;
//   - repetition: one character repeated, or a pattern of up to 32
//     characters repeated (at least twice, the last time possibly cut);
//   - fewer than MinSecretBits of estimated entropy (EstimateSecretBits).
//
// The checks catch what people type or leave in place, not every weak
// secret: a secret must still be drawn at random.
func CheckSecret(secret []byte) error {
	if len(secret) < MinSecretBytes {
		return ErrShortSecret
	}
	norm := make([]byte, 0, len(secret))
	for _, c := range secret {
		switch {
		case c >= 'A' && c <= 'Z':
			norm = append(norm, c+'a'-'A')
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			norm = append(norm, c)
		}
	}
	// A placeholder word refuses the secret when the rest of it (letters
	// and digits) is too short or too weak on its own: a random secret
	// that happens to contain "dummy" is no placeholder,
	// "please-change-me-before-going-live-9f3k" is.
	rest, found := string(norm), ""
	for _, w := range placeholderWords {
		if strings.Contains(rest, w) {
			if found == "" {
				found = w
			}
			rest = strings.ReplaceAll(rest, w, "")
		}
	}
	if found != "" && (len(rest) < MinSecretBytes || EstimateSecretBits([]byte(rest)) < MinSecretBits) {
		return fmt.Errorf("%w (it contains %q)", ErrPlaceholderSecret, found)
	}
	if p := period(secret); p == 1 {
		return fmt.Errorf("%w (one character repeated)", ErrRepetitiveSecret)
	} else if p > 0 {
		return fmt.Errorf("%w (%d characters repeated)", ErrRepetitiveSecret, p)
	}
	if bits := EstimateSecretBits(secret); bits < MinSecretBits {
		return fmt.Errorf("%w (about %d bits estimated, want at least %d)", ErrLowEntropySecret, int(bits), MinSecretBits)
	}
	return nil
}

// period returns the length of the shortest pattern of at most maxPeriod
// bytes that s repeats at least twice (the last time possibly cut), or 0.
func period(s []byte) int {
	for p := 1; p <= maxPeriod && 2*p <= len(s); p++ {
		i := p
		for i < len(s) && s[i] == s[i-p] {
			i++
		}
		if i == len(s) {
			return p
		}
	}
	return 0
}

// EstimateSecretBits estimates the entropy of secret in bits as the smaller
// of two figures:
//
//   - what its alphabet can hold: length × log2 of the size of the
//     character classes it uses (lowercase 26, uppercase 26, digits 10,
//     other printable ASCII 33, control bytes 33, bytes above 0x7f 128);
//   - what its character frequencies show: length × their Shannon entropy
//     (with the Miller–Madow small-sample correction), scaled by 4/3,
//     because a short random string's frequencies read below its true
//     entropy (32 random hex digits read about 125 of their 128 bits).
//
// 48 random bytes in base64 estimate at well over 300 bits.
func EstimateSecretBits(secret []byte) float64 {
	if len(secret) == 0 {
		return 0
	}
	var counts [256]int
	var lower, upper, digit, punct, ctrl, high bool
	distinct := 0
	for _, c := range secret {
		if counts[c] == 0 {
			distinct++
		}
		counts[c]++
		switch {
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= '0' && c <= '9':
			digit = true
		case c >= 0x80:
			high = true
		case c >= 0x20 && c < 0x7f:
			punct = true
		default:
			ctrl = true
		}
	}
	pool := 0
	for _, class := range []struct {
		used bool
		size int
	}{{lower, 26}, {upper, 26}, {digit, 10}, {punct, 33}, {ctrl, 33}, {high, 128}} {
		if class.used {
			pool += class.size
		}
	}
	n := float64(len(secret))
	var h float64
	for _, k := range counts {
		if k > 0 {
			p := float64(k) / n
			h -= p * math.Log2(p)
		}
	}
	h += float64(distinct-1) / (2 * n * math.Ln2)
	return min(n*math.Log2(float64(pool)), n*h*4/3)
}
