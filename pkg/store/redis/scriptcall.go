package redis

import (
	"strconv"
	"sync"

	"github.com/redis/rueidis"
)

// scriptCall holds the key and arguments of one rate or lease script call,
// formatted into one reusable buffer and handed to rueidis as strings over
// that buffer (rueidis.BinaryString, no copy), so that a call in steady
// state allocates neither its key nor its arguments.
//
// rueidis writes a command from those strings after Exec has queued it and,
// when Exec's context ends first, possibly after Exec has returned: the
// bytes must stay untouched until the command is done. So a scriptCall goes
// back to the pool (done) only once the server has answered the call (a
// reply, an error reply included); after any other error it is left to the
// garbage collector, and the next call gets a new one.
type scriptCall struct {
	buf  []byte
	ends [1 + maxScriptArgs]int // end of the key, then of each argument
	n    int                    // arguments so far
	keys [1]string
	args [maxScriptArgs]string
}

// maxScriptArgs is the most arguments a script of the limiter takes
// (lease.lua).
const maxScriptArgs = 10

var scriptCalls = sync.Pool{New: func() any { return &scriptCall{buf: make([]byte, 0, 256)} }}

// newScriptCall returns a pooled scriptCall whose key is the bucket key of
// id (RateKey).
func newScriptCall(id []byte) *scriptCall {
	c := scriptCalls.Get().(*scriptCall)
	c.buf = append(c.buf[:0], RateKeyPrefix...)
	c.buf = append(c.buf, id...)
	c.buf = append(c.buf, '}')
	c.ends[0] = len(c.buf)
	c.n = 0
	return c
}

// int appends an integer argument.
func (c *scriptCall) int(v int64) {
	c.buf = strconv.AppendInt(c.buf, v, 10)
	c.n++
	c.ends[c.n] = len(c.buf)
}

// uint appends an unsigned integer argument.
func (c *scriptCall) uint(v uint64) {
	c.buf = strconv.AppendUint(c.buf, v, 10)
	c.n++
	c.ends[c.n] = len(c.buf)
}

// str appends the argument prefix+s.
func (c *scriptCall) str(prefix, s string) {
	c.buf = append(c.buf, prefix...)
	c.buf = append(c.buf, s...)
	c.n++
	c.ends[c.n] = len(c.buf)
}

// build returns the key and the arguments as strings over the buffer; the
// buffer must not change until done. The slices are c's own arrays.
func (c *scriptCall) build() (keys, args []string) {
	c.keys[0] = rueidis.BinaryString(c.buf[:c.ends[0]])
	for i := range c.n {
		c.args[i] = rueidis.BinaryString(c.buf[c.ends[i]:c.ends[i+1]])
	}
	return c.keys[:], c.args[:c.n]
}

// done ends the call with the error Exec returned: when it is nil or an
// error reply the server answered the call, rueidis is done with the
// buffer and c goes back to the pool.
func (c *scriptCall) done(err error) {
	if err != nil {
		if _, reply := rueidis.IsRedisErr(err); !reply {
			return
		}
	}
	c.keys[0] = ""
	clear(c.args[:c.n])
	if cap(c.buf) > 4096 {
		c.buf = make([]byte, 0, 256)
	}
	scriptCalls.Put(c)
}
