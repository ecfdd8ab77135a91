package router

import (
	"strconv"
	"testing"
)

// benchTable builds a table the size of a real deployment: 50 routes mixing
// exact paths, method-split prefixes, hosts and wildcards.
func benchTable(tb testing.TB) *Table {
	tb.Helper()
	routes := []*Route{
		{Name: "login", Path: "/v1/auth/login", Methods: []string{"POST"}},
		{Name: "auth", PathPrefix: "/v1/auth/"},
		{Name: "health", Path: "/healthz", Methods: []string{"GET"}},
		{Name: "api-orders", Host: "api.example.com", PathPrefix: "/v2/orders"},
		{Name: "api", Host: "api.example.com", PathPrefix: "/"},
		{Name: "tenant-reports", Host: "*.tenants.example.com", PathPrefix: "/reports/", Methods: []string{"GET"}},
		{Name: "tenant", Host: "*.tenants.example.com", PathPrefix: "/"},
		{Name: "static", PathPrefix: "/static/", Methods: []string{"GET"}},
	}
	for i := 0; len(routes) < 50; i++ {
		svc := "/v1/svc" + strconv.Itoa(i)
		routes = append(routes,
			&Route{Name: "svc" + strconv.Itoa(i) + "-read", PathPrefix: svc + "/items/", Methods: []string{"GET"}},
			&Route{Name: "svc" + strconv.Itoa(i) + "-write", PathPrefix: svc + "/items", Methods: []string{"POST", "PUT", "DELETE"}},
			&Route{Name: "svc" + strconv.Itoa(i) + "-admin", PathPrefix: svc + "/admin"},
			&Route{Name: "svc" + strconv.Itoa(i) + "-status", Path: svc + "/status", Methods: []string{"GET"}},
		)
	}
	tbl, err := New(routes[:50])
	if err != nil {
		tb.Fatal(err)
	}
	return tbl
}

func BenchmarkMatch(b *testing.B) {
	tbl := benchTable(b)
	benchmarks := []struct {
		name   string
		method string
		host   string
		path   string
	}{
		{name: "exact", method: "POST", host: "gw.example.com", path: "/v1/auth/login"},
		{name: "prefix", method: "GET", host: "gw.example.com:8080", path: "/v1/svc7/items/42"},
		{name: "deep-prefix", method: "GET", host: "gw.example.com", path: "/v1/svc7/items/42/parts/9/history/2024/01"},
		{name: "exact-host", method: "GET", host: "api.example.com", path: "/v2/orders/1"},
		{name: "wildcard-host", method: "GET", host: "acme.tenants.example.com", path: "/reports/2024/q1"},
		{name: "405", method: "PATCH", host: "gw.example.com", path: "/v1/svc3/items/1"},
		{name: "404", method: "GET", host: "gw.example.com", path: "/nothing/here"},
	}
	for _, bm := range benchmarks {
		method, host, path := []byte(bm.method), []byte(bm.host), []byte(bm.path)
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tbl.Match(method, host, path, nil)
			}
		})
	}
	b.Run("parallel", func(b *testing.B) {
		method, host, path := []byte("GET"), []byte("gw.example.com"), []byte("/v1/svc7/items/42")
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				tbl.Match(method, host, path, nil)
			}
		})
	})
}

// fixedHeaders is a Headers over fixed byte slices, like fasthttp's
// RequestHeader: Peek returns a slice it owns.
type fixedHeaders struct{ canary, region []byte }

func (h *fixedHeaders) Peek(name string) []byte {
	switch name {
	case "X-Canary":
		return h.canary
	case "X-Region":
		return h.region
	}
	return nil
}

// paramBenchTable builds a table of 50 routes with parameters, header
// conditions, rest parameters and prefixes.
func paramBenchTable(tb testing.TB) *Table {
	tb.Helper()
	canary := []Header{{Name: "X-Canary", Value: "1"}}
	routes := []*Route{
		{Name: "static", Path: "/static/{path...}", Methods: []string{"GET"}},
		{Name: "health", Path: "/healthz", Methods: []string{"GET"}},
	}
	for i := 0; len(routes) < 50; i++ {
		svc := "svc" + strconv.Itoa(i)
		routes = append(routes,
			&Route{Name: svc + "-item", Path: "/v1/" + svc + "/items/{id}", Methods: []string{"GET", "PUT"}, Rewrite: "/items/{id}"},
			&Route{Name: svc + "-item-canary", Path: "/v1/" + svc + "/items/{id}", Methods: []string{"GET"}, Headers: canary},
			&Route{Name: svc + "-item-canary-eu", Path: "/v1/" + svc + "/items/{id}", Methods: []string{"GET"}, Headers: []Header{canary[0], {Name: "X-Region", Value: "eu"}}},
			&Route{Name: svc + "-write", PathPrefix: "/v1/" + svc + "/items/", Methods: []string{"POST"}},
			&Route{Name: svc + "-order", Path: "/v1/tenants/{tenant}/" + svc + "/orders/{id}", Rewrite: "/orders/{id}/tenant/{tenant}"},
		)
	}
	tbl, err := New(routes[:50])
	if err != nil {
		tb.Fatal(err)
	}
	return tbl
}

func BenchmarkMatchParams(b *testing.B) {
	tbl := paramBenchTable(b)
	benchmarks := []struct {
		name string
		path string
		hdr  *fixedHeaders
	}{
		{name: "parameter", path: "/v1/svc3/items/42"},
		{name: "two-parameters", path: "/v1/tenants/acme/svc5/orders/77"},
		{name: "rest", path: "/static/css/site/main.css"},
		{name: "header", path: "/v1/svc3/items/42", hdr: &fixedHeaders{canary: []byte("1")}},
		{name: "header-absent", path: "/v1/svc3/items/42", hdr: &fixedHeaders{}},
		{name: "404", path: "/v2/nothing/here"},
	}
	for _, bm := range benchmarks {
		method, path := []byte("GET"), []byte(bm.path)
		var hdr Headers
		if bm.hdr != nil {
			hdr = bm.hdr
		}
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tbl.Match(method, nil, path, hdr)
			}
		})
	}
}

func BenchmarkRewrite(b *testing.B) {
	tbl := paramBenchTable(b)
	path := []byte("/v1/tenants/acme/svc5/orders/77")
	res := tbl.Match([]byte("GET"), nil, path, nil)
	rw := tbl.Rewrite(res.Route)
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		dst = rw.Append(dst[:0], path, &res.Params)
	}
}

func BenchmarkNormalizePath(b *testing.B) {
	benchmarks := []struct {
		name string
		raw  string
	}{
		{name: "clean", raw: "/v1/svc7/items/42/parts"},
		{name: "dirty", raw: "/v1//svc7/%69tems/./42/../43/caf%C3%A9/%2e%2e/parts/"},
	}
	for _, bm := range benchmarks {
		raw := []byte(bm.raw)
		dst := make([]byte, 0, len(raw))
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if _, err := NormalizePath(dst[:0], raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendEscapedPath(b *testing.B) {
	p := []byte("/v1/svc7/items/43/café/parts/a b")
	dst := make([]byte, 0, 3*len(p))
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		dst = AppendEscapedPath(dst[:0], p)
	}
}
