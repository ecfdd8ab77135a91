package redis

import (
	"slices"
	"strconv"
	"testing"
)

func TestScriptArgs(t *testing.T) {
	tests := []struct {
		name string
		give [4]int64
	}{
		{name: "small", give: [4]int64{5, 1, 1, 1}},
		{name: "per second", give: [4]int64{1_000_000, 1_000_000, 1_000_000, 1}},
		{name: "large", give: [4]int64{1 << 52, 1 << 40, 1 << 12, 1 << 30}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := make([]string, 4)
			for i, v := range tt.give {
				want[i] = strconv.FormatInt(v, 10)
			}
			for range 2 { // formatted, then cached
				if got := scriptArgs(tt.give[0], tt.give[1], tt.give[2], tt.give[3]); !slices.Equal(got, want) {
					t.Fatalf("scriptArgs = %q, want %q", got, want)
				}
			}
		})
	}
}

// TestScriptArgsEviction fills the cache well past its size: every pair
// still gets its own arguments.
func TestScriptArgsEviction(t *testing.T) {
	for round := range 2 {
		for i := range int64(4 * argsCacheSize) {
			got := scriptArgs(i+1, 1, 1000, i+2)
			want := []string{strconv.FormatInt(i+1, 10), "1", "1000", strconv.FormatInt(i+2, 10)}
			if !slices.Equal(got, want) {
				t.Fatalf("round %d: scriptArgs = %q, want %q", round, got, want)
			}
		}
	}
}

func TestRevocationKeys(t *testing.T) {
	tests := []struct {
		name           string
		giveJTI        string
		giveSubject    string
		wantJTIKey     string
		wantSubjectKey string
	}{
		{name: "both", giveJTI: "j-1", giveSubject: "ann", wantJTIKey: RevokedKey("j-1"), wantSubjectKey: RevokeAllKey("ann")},
		{name: "jti only", giveJTI: "j-1", wantJTIKey: RevokedKey("j-1")},
		{name: "subject only", giveSubject: "ann", wantSubjectKey: RevokeAllKey("ann")},
		{name: "neither"},
		{name: "braces", giveJTI: "}{", giveSubject: "{x}", wantJTIKey: RevokedKey("}{"), wantSubjectKey: RevokeAllKey("{x}")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jtiKey, subjectKey := revocationKeys([]byte(tt.giveJTI), []byte(tt.giveSubject))
			if jtiKey != tt.wantJTIKey || subjectKey != tt.wantSubjectKey {
				t.Fatalf("revocationKeys = %q, %q, want %q, %q", jtiKey, subjectKey, tt.wantJTIKey, tt.wantSubjectKey)
			}
		})
	}
}
