package auth

import "errors"

// ErrCritHeader is returned for a token whose JOSE header has a "crit"
// parameter.
var ErrCritHeader = errors.New(`token has a "crit" header: no JWS extension is understood`)

// CheckCrit refuses a JOSE header that has a "crit" parameter. RFC 7515
// §4.1.11 makes a recipient reject a token whose crit lists an extension it
// does not understand, and makes an empty crit, or one that is not a list
// of names, invalid. Neither the gateway nor the auth service understands
// any extension, so every crit, whatever its value, is refused.
func CheckCrit(header map[string]any) error {
	if _, ok := header["crit"]; ok {
		return ErrCritHeader
	}
	return nil
}

// tokenBytes classifies the bytes of a compact JWS: 1 for the base64url
// alphabet (no padding), 2 for the part separator, 0 for anything else.
var tokenBytes = func() (t [256]uint8) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") {
		t[c] = 1
	}
	t['.'] = 2
	return t
}()

// WellFormed reports whether tok is exactly three non-empty base64url
// parts and nothing else: no padding, no fourth part, and no CR or LF,
// which Go's base64 decoder skips even in strict mode, so they would give
// one token many spellings. Together with strict decoding (zero spare bits
// in the last character of each part) a valid token then has exactly one
// spelling, which refresh rotation relies on: it compares hashes of the
// token's text. It does not allocate.
func WellFormed[T ~string | ~[]byte](tok T) bool {
	dots, last := 0, -1
	for i := range len(tok) {
		switch tokenBytes[tok[i]] {
		case 1:
		case 2:
			if i == last+1 {
				return false
			}
			dots++
			last = i
		default:
			return false
		}
	}
	return dots == 2 && last < len(tok)-1
}
