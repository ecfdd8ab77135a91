package plugins

import "github.com/gatewayd/gatewayd/pkg/config"

// kindOnly is a Factory that builds nothing, for registry tests.
type kindOnly string

func (k kindOnly) Kind() string { return string(k) }

func (kindOnly) Build(config.Section, *Env) (Plugin, error) { return nil, nil }
