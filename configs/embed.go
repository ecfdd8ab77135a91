// Package configs embeds the default configuration, so a bare `gatewayd`
// runs without any file.
package configs

import _ "embed"

// Default is configs/gateway.yaml.
//
//go:embed gateway.yaml
var Default []byte

// DefaultName is the file name reported in messages about Default.
const DefaultName = "configs/gateway.yaml (embedded)"
