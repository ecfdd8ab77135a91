//go:build !race

package router

import "testing"

func TestMatchDoesNotAllocate(t *testing.T) {
	tbl := benchTable(t)
	tests := []struct {
		name       string
		giveMethod string
		giveHost   string
		givePath   string
		wantStatus int
	}{
		{name: "exact path", giveMethod: "POST", giveHost: "gw.example.com", givePath: "/v1/auth/login"},
		{name: "deep prefix", giveMethod: "GET", giveHost: "gw.example.com:8080", givePath: "/v1/svc7/items/42/parts/9/history"},
		{name: "exact host", giveMethod: "GET", giveHost: "API.Example.com", givePath: "/v2/orders/1"},
		{name: "wildcard host", giveMethod: "GET", giveHost: "acme.tenants.example.com", givePath: "/reports/2024/q1"},
		{name: "head", giveMethod: "HEAD", giveHost: "gw.example.com", givePath: "/healthz"},
		{name: "405", giveMethod: "PATCH", giveHost: "gw.example.com", givePath: "/v1/svc3/items/1", wantStatus: 405},
		{name: "404", giveMethod: "GET", giveHost: "gw.example.com", givePath: "/nothing/here", wantStatus: 404},
		{name: "overlong host", giveMethod: "GET", giveHost: string(make([]byte, 400)), givePath: "/healthz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, host, path := []byte(tt.giveMethod), []byte(tt.giveHost), []byte(tt.givePath)
			if got := tbl.Match(method, host, path, nil); got.Status != tt.wantStatus {
				t.Fatalf("Match(%s %s %s) status %d, want %d", method, host, path, got.Status, tt.wantStatus)
			}
			allocs := testing.AllocsPerRun(1000, func() {
				tbl.Match(method, host, path, nil)
			})
			if allocs != 0 {
				t.Errorf("Match allocates %.1f times per call, want 0", allocs)
			}
		})
	}
}

func TestPathFunctionsDoNotAllocate(t *testing.T) {
	raw := []byte("/v1//svc7/%69tems/./42/../43/caf%C3%A9/%2e%2e/parts/")
	dst := make([]byte, 0, 2*len(raw))
	wire := make([]byte, 0, 3*len(raw))
	allocs := testing.AllocsPerRun(1000, func() {
		p, err := NormalizePath(dst[:0], raw)
		if err != nil {
			t.Fatal(err)
		}
		wire = AppendEscapedPath(wire[:0], p)
	})
	if allocs != 0 {
		t.Errorf("NormalizePath and AppendEscapedPath allocate %.1f times per call, want 0", allocs)
	}
	if want := "/v1/svc7/items/43/parts/"; string(wire) != want {
		t.Errorf("wire path = %q, want %q", wire, want)
	}
	bad := []byte("/v1/admin%zz")
	allocs = testing.AllocsPerRun(1000, func() {
		if _, err := NormalizePath(dst[:0], bad); err == nil {
			t.Fatal("NormalizePath accepted an invalid escape")
		}
	})
	if allocs != 0 {
		t.Errorf("NormalizePath allocates %.1f times on a bad path, want 0", allocs)
	}
}

func TestMatchParamsDoesNotAllocate(t *testing.T) {
	tbl := paramBenchTable(t)
	tests := []struct {
		name       string
		giveMethod string
		givePath   string
		giveHdr    *fixedHeaders
		wantRoute  string
		wantStatus int
	}{
		{name: "parameter", giveMethod: "GET", givePath: "/v1/svc3/items/42", wantRoute: "svc3-item"},
		{name: "two parameters", giveMethod: "GET", givePath: "/v1/tenants/acme/svc5/orders/77", wantRoute: "svc5-order"},
		{name: "rest", giveMethod: "GET", givePath: "/static/css/site/main.css", wantRoute: "static"},
		{name: "backtrack to prefix", giveMethod: "POST", givePath: "/v1/svc3/items/42/x", wantRoute: "svc3-write"},
		{name: "header", giveMethod: "GET", givePath: "/v1/svc3/items/42", giveHdr: &fixedHeaders{canary: []byte("1")}, wantRoute: "svc3-item-canary"},
		{name: "two headers", giveMethod: "GET", givePath: "/v1/svc3/items/42", giveHdr: &fixedHeaders{canary: []byte("1"), region: []byte("eu")}, wantRoute: "svc3-item-canary-eu"},
		{name: "header absent", giveMethod: "GET", givePath: "/v1/svc3/items/42", giveHdr: &fixedHeaders{}, wantRoute: "svc3-item"},
		{name: "405", giveMethod: "PATCH", givePath: "/v1/svc3/items/42", wantStatus: 405},
		{name: "404", giveMethod: "GET", givePath: "/v2/nothing", wantStatus: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, path := []byte(tt.giveMethod), []byte(tt.givePath)
			var hdr Headers
			if tt.giveHdr != nil {
				hdr = tt.giveHdr
			}
			got := tbl.Match(method, nil, path, hdr)
			gotRoute := ""
			if got.Route != nil {
				gotRoute = got.Route.Name
			}
			if gotRoute != tt.wantRoute || got.Status != tt.wantStatus {
				t.Fatalf("Match(%s %s) = route %q status %d, want %q %d", method, path, gotRoute, got.Status, tt.wantRoute, tt.wantStatus)
			}
			allocs := testing.AllocsPerRun(1000, func() {
				tbl.Match(method, nil, path, hdr)
			})
			if allocs != 0 {
				t.Errorf("Match allocates %.1f times per call, want 0", allocs)
			}
		})
	}
}

func TestRewriteDoesNotAllocate(t *testing.T) {
	tbl := paramBenchTable(t)
	path := []byte("/v1/tenants/acme corp/svc5/orders/77")
	res := tbl.Match([]byte("GET"), nil, path, nil)
	if res.Route == nil {
		t.Fatalf("no route for %s", path)
	}
	rw := tbl.Rewrite(res.Route)
	dst := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(1000, func() {
		dst = rw.Append(dst[:0], path, &res.Params)
	})
	if allocs != 0 {
		t.Errorf("Rewrite.Append allocates %.1f times per call, want 0", allocs)
	}
	if want := "/orders/77/tenant/acme%20corp"; string(dst) != want {
		t.Errorf("rewritten path = %q, want %q", dst, want)
	}
}
