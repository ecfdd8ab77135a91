// Package chain holds the whole-chain micro-benchmarks of the gateway: a
// real configuration built with gateway.New, every request through
// Gateway.Handle (routing, header hygiene, the plugin chain, the upstream
// exchange over loopback, metrics) on a reused fasthttp.RequestCtx, with
// tokens spread over many users; the same chain driven without the
// upstream; and a loopback server under parallel load for CPU profiles.
// The package has no code besides its tests.
package chain
