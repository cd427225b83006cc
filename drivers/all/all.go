// Package all is the one explicit table of device drivers: a driver's YAML
// name to its factory. Adding a driver is adding a line here.
package all

import (
	"fmt"
	"sort"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/simdev"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"
)

// Deps is what a factory may use. Factories validate their settings
// without I/O; connecting happens on first use.
type Deps struct {
	Spec    switchd.FleetSpec
	Devices []string // the fleet's device list, when the site gives one
	Clock   switchd.Clock
	Logger  *zap.Logger
}

// Factory builds a fleet's driver from its settings block.
type Factory func(settings *yaml.Node, deps Deps) (switchd.Driver, error)

// factories is read-only after init.
var factories = map[string]Factory{
	"sim": func(settings *yaml.Node, deps Deps) (switchd.Driver, error) {
		cfg, err := simdev.ParseConfig(settings)
		if err != nil {
			return nil, err
		}
		return simdev.New(deps.Spec, cfg, deps.Clock), nil
	},
}

// Lookup returns the named driver's factory.
func Lookup(name string) (Factory, error) {
	f, ok := factories[name]
	if !ok {
		return nil, fmt.Errorf("unknown driver %q (known: %v)", name, Names())
	}
	return f, nil
}

// Names lists the known drivers, sorted.
func Names() []string {
	out := make([]string, 0, len(factories))
	for n := range factories {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
