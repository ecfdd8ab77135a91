package auth

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Password policy limits.
const (
	// MinPasswordChars is the shortest password, in characters.
	MinPasswordChars = 10
	// MaxPasswordBytes is bcrypt's input limit. A longer password is
	// rejected, never truncated.
	MaxPasswordBytes = 72
	// minLocalPartMatch is the shortest email local part the "must not
	// contain" rule applies to; a one- or two-letter local part would
	// reject most passwords.
	minLocalPartMatch = 3
)

// Password policy errors. Their texts are fixed and meant for the client.
var (
	ErrPasswordTooShort     = errors.New("password must be at least 10 characters long")
	ErrPasswordTooLong      = errors.New("password must be at most 72 bytes (the bcrypt limit); it is never truncated")
	ErrPasswordNotUTF8      = errors.New("password must be valid UTF-8 text")
	ErrPasswordOneClass     = errors.New("password must mix at least two kinds of characters: lowercase letters, uppercase letters, digits, symbols")
	ErrPasswordHasLocalPart = errors.New("password must not contain the part of the email address before the @")
)

// CheckPassword applies the password policy for the account email (already
// normalised, may be empty): at least 10 characters and at most 72 bytes,
// at least two character classes, and not equal to or containing the
// email's local part (containment is checked for local parts of three
// characters or more). It returns nil or one of the ErrPassword errors.
func CheckPassword(password, email string) error {
	if len(password) > MaxPasswordBytes {
		return ErrPasswordTooLong
	}
	if !utf8.ValidString(password) {
		return ErrPasswordNotUTF8
	}
	if utf8.RuneCountInString(password) < MinPasswordChars {
		return ErrPasswordTooShort
	}
	var lower, upper, digit, other bool
	for _, r := range password {
		switch {
		case unicode.IsLower(r):
			lower = true
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsDigit(r):
			digit = true
		default:
			other = true
		}
	}
	classes := 0
	for _, b := range [...]bool{lower, upper, digit, other} {
		if b {
			classes++
		}
	}
	if classes < 2 {
		return ErrPasswordOneClass
	}
	if local, _, ok := strings.Cut(email, "@"); ok && local != "" {
		pw := strings.ToLower(password)
		if pw == local || (len(local) >= minLocalPartMatch && strings.Contains(pw, local)) {
			return ErrPasswordHasLocalPart
		}
	}
	return nil
}
