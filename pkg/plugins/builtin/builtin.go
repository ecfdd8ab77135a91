// Package builtin registers every built-in plugin factory, explicitly and
// in one place.
package builtin

import (
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/plugins/apikey"
	"github.com/gatewayd/gatewayd/pkg/plugins/blacklist"
	"github.com/gatewayd/gatewayd/pkg/plugins/compress"
	"github.com/gatewayd/gatewayd/pkg/plugins/cors"
	"github.com/gatewayd/gatewayd/pkg/plugins/headers"
	"github.com/gatewayd/gatewayd/pkg/plugins/ipfilter"
	"github.com/gatewayd/gatewayd/pkg/plugins/jwt"
	"github.com/gatewayd/gatewayd/pkg/plugins/ratelimit"
	"github.com/gatewayd/gatewayd/pkg/plugins/rbac"
	"github.com/gatewayd/gatewayd/pkg/plugins/requestid"
	"github.com/gatewayd/gatewayd/pkg/plugins/secheaders"
)

// Register adds the built-in factories to reg.
func Register(reg *plugins.Registry) {
	reg.Register(requestid.Factory{})
	reg.Register(jwt.Factory{})
	reg.Register(apikey.Factory{})
	reg.Register(blacklist.Factory{})
	reg.Register(rbac.Factory{})
	reg.Register(ratelimit.Factory{})
	reg.Register(cors.Factory{})
	reg.Register(secheaders.Factory{})
	reg.Register(ipfilter.Factory{})
	reg.Register(headers.Factory{})
	reg.Register(compress.Factory{})
}

// Registry returns a new registry holding the built-in factories.
func Registry() *plugins.Registry {
	reg := plugins.NewRegistry()
	Register(reg)
	return reg
}
