package redis

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/store"
)

func TestDecodeTake(t *testing.T) {
	tests := []struct {
		name                                         string
		giveV, giveCap, giveCost, giveUnit, giveRate int64
		want                                         store.Result
	}{
		{
			name: "allowed, full after the take", giveV: 5_000_000,
			giveCap: 5_000_000, giveCost: 1_000_000, giveUnit: 1_000_000, giveRate: 1,
			want: store.Result{Allowed: true, Remaining: 5},
		},
		{
			name: "allowed, part of a token left", giveV: 1_500_000,
			giveCap: 5_000_000, giveCost: 1_000_000, giveUnit: 1_000_000, giveRate: 3,
			want: store.Result{Allowed: true, Remaining: 1, Reset: 1_166_667 * time.Microsecond},
		},
		{
			name: "allowed, empty", giveV: 0,
			giveCap: 10, giveCost: 10, giveUnit: 10, giveRate: 4,
			want: store.Result{Allowed: true, Remaining: 0, Reset: 3 * time.Microsecond},
		},
		{
			name: "refused, empty", giveV: -1,
			giveCap: 5_000_000, giveCost: 2_000_000, giveUnit: 1_000_000, giveRate: 1,
			want: store.Result{Remaining: 0, Reset: 5 * time.Second, RetryAfter: 2 * time.Second},
		},
		{
			name: "refused, short by a part of a token", giveV: -(1_200_000 + 1),
			giveCap: 5_000_000, giveCost: 2_000_000, giveUnit: 1_000_000, giveRate: 7,
			want: store.Result{Remaining: 1, Reset: 542_858 * time.Microsecond, RetryAfter: 114_286 * time.Microsecond},
		},
		{
			name: "largest bucket, refused one unit short", giveV: -(1<<52 - 1) - 1,
			giveCap: 1 << 52, giveCost: 1 << 52, giveUnit: 1 << 12, giveRate: 1,
			want: store.Result{Remaining: 1<<40 - 1, Reset: time.Microsecond, RetryAfter: time.Microsecond},
		},
		{
			name: "largest level allowed", giveV: 1 << 52,
			giveCap: 1 << 52, giveCost: 1 << 12, giveUnit: 1 << 12, giveRate: 1,
			want: store.Result{Allowed: true, Remaining: 1 << 40},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decodeTake(tt.giveV, tt.giveCap, tt.giveCost, tt.giveUnit, tt.giveRate)
			if got != tt.want {
				t.Fatalf("decodeTake = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCeilDiv(t *testing.T) {
	tests := []struct{ giveA, giveB, want int64 }{
		{0, 1, 0}, {1, 1, 1}, {7, 2, 4}, {8, 2, 4}, {1, 1 << 62, 1}, {1 << 52, 1<<63 - 1, 1},
	}
	for _, tt := range tests {
		if got := ceilDiv(tt.giveA, tt.giveB); got != tt.want {
			t.Errorf("ceilDiv(%d, %d) = %d, want %d", tt.giveA, tt.giveB, got, tt.want)
		}
	}
}

func TestScriptCallBuild(t *testing.T) {
	for round := range 3 { // a fresh call, then pooled ones
		c := newScriptCall([]byte("u|" + strconv.Itoa(round)))
		c.int(-12)
		c.uint(1<<53 - 1)
		c.str("i:", "holder")
		c.int(0)
		keys, args := c.build()
		wantKey := RateKey([]byte("u|" + strconv.Itoa(round)))
		wantArgs := []string{"-12", "9007199254740991", "i:holder", "0"}
		if !slices.Equal(keys, []string{wantKey}) || !slices.Equal(args, wantArgs) {
			t.Fatalf("round %d: build = %q, %q, want [%q], %q", round, keys, args, wantKey, wantArgs)
		}
		c.done(nil)
	}
}
