package plugins

import (
	"errors"

	"github.com/valyala/fasthttp"
)

// Chain is a route's ordered plugins. It is immutable once built.
type Chain struct {
	plugins []Plugin
	hooks   []ResponseHook // hooks[i] is plugins[i]'s hook or nil
	kinds   []string
}

// NewChain returns a chain running ps in order; kinds[i] is ps[i]'s kind.
func NewChain(ps []Plugin, kinds []string) *Chain {
	c := &Chain{plugins: ps, hooks: make([]ResponseHook, len(ps)), kinds: kinds}
	for i, p := range ps {
		if h, ok := p.(ResponseHook); ok {
			c.hooks[i] = h
		}
	}
	return c
}

// Len returns the number of plugins.
func (c *Chain) Len() int { return len(c.plugins) }

// Kinds returns the plugin kinds in order.
func (c *Chain) Kinds() []string { return c.kinds }

// Plugins returns the plugins in order.
func (c *Chain) Plugins() []Plugin { return c.plugins }

// Handle runs the plugins in order until one returns Done. It returns the
// verdict and how many plugins ran (for OnResponse).
func (c *Chain) Handle(ctx *fasthttp.RequestCtx) (Verdict, int) {
	for i, p := range c.plugins {
		if p.Handle(ctx) == Done {
			return Done, i + 1
		}
	}
	return Next, len(c.plugins)
}

// OnResponse calls the response hooks of the first n plugins, in order.
func (c *Chain) OnResponse(ctx *fasthttp.RequestCtx, n int) {
	for _, h := range c.hooks[:n] {
		if h != nil {
			h.OnResponse(ctx)
		}
	}
}

// Close closes every plugin once and joins their errors.
func (c *Chain) Close() error {
	var errs []error
	for _, p := range c.plugins {
		errs = append(errs, p.Close())
	}
	c.plugins = nil
	return errors.Join(errs...)
}
