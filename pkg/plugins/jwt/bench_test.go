package jwt

import (
	"testing"

	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	jwtlib "github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"
)

// BenchmarkHandle measures one verified request, with the verified-token
// cache (the steady state) and without it (golang-jwt on every request).
func BenchmarkHandle(b *testing.B) {
	k := getKeys(b)
	dir := b.TempDir()
	hsTok := mint(b, jwtlib.SigningMethodHS256, []byte(testSecret), claims(), "")
	rsCfg := "algorithms: [RS256]\npublic_key_file: " + writePEM(b, dir, "rsa.pem", &k.rsa.PublicKey) + "\n"
	rsTok := mint(b, jwtlib.SigningMethodRS256, k.rsa, claims(), "")
	edCfg := "algorithms: [EdDSA]\npublic_key_file: " + writePEM(b, dir, "ed.pem", k.ed.Public()) + "\n"
	edTok := mint(b, jwtlib.SigningMethodEdDSA, k.ed, claims(), "")
	benches := []struct {
		name string
		cfg  string
		tok  string
	}{
		{"HS256/cache", hsConfig, hsTok},
		{"HS256/nocache", hsConfig + "cache_size: 0\n", hsTok},
		{"RS256/cache", rsCfg, rsTok},
		{"RS256/nocache", rsCfg + "cache_size: 0\n", rsTok},
		{"EdDSA/cache", edCfg, edTok},
		{"EdDSA/nocache", edCfg + "cache_size: 0\n", edTok},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			p := mustBuild(b, bb.cfg, newClock(t0).env("bench"))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var ctx fasthttp.RequestCtx
				ctx.Request.SetRequestURI("/v1/users/me")
				ctx.Request.Header.Set("Authorization", "Bearer "+bb.tok)
				reqctx.Acquire(&ctx)
				for pb.Next() {
					if p.Handle(&ctx) != plugins.Next {
						b.Fatalf("refused: %s", ctx.Response.Body())
					}
				}
			})
		})
	}
}

// BenchmarkHandleProviders measures the cache-hit path of a plugin with
// seven providers (the fake IdPs of idp_test.go), for a token of a remote
// RS256 provider with namespaced list claims and one of the HS256 service.
func BenchmarkHandleProviders(b *testing.B) {
	f := newIdPFixture(b, "bench-providers")
	for _, bb := range []struct{ name, tok string }{
		{"auth0/cache", f.auth0Token(b)},
		{"keycloak/cache", f.keycloakToken(b, jwtlib.SigningMethodRS256, f.keycloakRSA, "kc-rsa")},
		{"own/cache", f.ownToken(b)},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var ctx fasthttp.RequestCtx
				ctx.Request.SetRequestURI("/v1/users/me")
				ctx.Request.Header.Set("Authorization", "Bearer "+bb.tok)
				reqctx.Acquire(&ctx)
				for pb.Next() {
					if f.p.Handle(&ctx) != plugins.Next {
						b.Fatalf("refused: %s", ctx.Response.Body())
					}
				}
			})
		})
	}
}
