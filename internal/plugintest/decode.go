package plugintest

import (
	"bytes"
	stdgzip "compress/gzip"
	"io"
	"testing"

	brrr "github.com/molecule-man/go-brrr"
)

// Decompress returns body decoded from the Content-Encoding enc (gzip or
// br), failing the test on any other encoding or a corrupt body.
func Decompress(t testing.TB, enc string, body []byte) []byte {
	t.Helper()
	var r io.Reader
	switch enc {
	case "gzip":
		zr, err := stdgzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case "br":
		r = brrr.NewReader(bytes.NewReader(body))
	default:
		t.Fatalf("Content-Encoding %q", enc)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
