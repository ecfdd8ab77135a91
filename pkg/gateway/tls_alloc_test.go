//go:build !race

package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestClientCertHeaderZeroAlloc: the forward_client_cert value is derived
// once per connection; setting it on each request does not allocate.
func TestClientCertHeaderZeroAlloc(t *testing.T) {
	server := makeCert(t, certSpec{cn: "server", dns: []string{"api.example.com"}})
	client := makeCert(t, certSpec{cn: "alice", dns: []string{"alice.example.com"}})
	clients := x509.NewCertPool()
	clients.AddCert(client.pair.Leaf)
	roots := x509.NewCertPool()
	roots.AddCert(server.pair.Leaf)

	sc, cc := net.Pipe()
	defer sc.Close()
	defer cc.Close()
	conn := &tlsConn{Conn: tls.Server(sc, &tls.Config{Certificates: []tls.Certificate{server.pair},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients})}
	errc := make(chan error, 1)
	go func() {
		errc <- tls.Client(cc, &tls.Config{ServerName: "api.example.com", RootCAs: roots,
			Certificates: []tls.Certificate{client.pair}}).Handshake()
	}()
	if err := conn.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}

	var ctx fasthttp.RequestCtx
	ctx.Init2(conn, nil, false)
	name := fasthttp.AppendNormalizedHeaderKey(nil, "X-Client-Cert-Subject")
	setClientCert(&ctx, name)
	if got := string(ctx.Request.Header.Peek("X-Client-Cert-Subject")); got != "CN=alice;DNS=alice.example.com" {
		t.Fatalf("header = %q", got)
	}
	if !ctx.IsTLS() {
		t.Fatal("the wrapped connection is not seen as TLS")
	}
	if n := testing.AllocsPerRun(100, func() {
		ctx.Request.Header.Del("X-Client-Cert-Subject")
		setClientCert(&ctx, name)
	}); n != 0 {
		t.Fatalf("%v allocations per request", n)
	}
}
