package daemon

import (
	"errors"
	"fmt"
	"strings"

	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/drivers/all"
	"go.uber.org/zap"
)

// LoadSite loads a site file as `switchd run` does before it starts
// anything: the file with every range check (config.LoadSite), then every
// fleet's driver built without I/O, so an unknown driver or a bad settings
// block is an error naming the site file, line and key. `switchd validate`
// calls it too, so the two refuse the same files with the same messages.
func LoadSite(path string) (*config.Site, error) {
	site, err := config.LoadSite(path)
	if err != nil {
		return nil, err
	}
	if err := CheckDrivers(site); err != nil {
		return nil, err
	}
	return site, nil
}

// CheckDrivers builds every fleet's driver, as the daemon does, without
// I/O, and returns every problem as a *config.ConfigError.
func CheckDrivers(site *config.Site) error {
	var errs []error
	for i := range site.Fleets {
		f := &site.Fleets[i]
		d := all.Deps{Spec: f.Spec, Devices: f.Devices, Settings: site.DriverSettings(i), Clock: WallClock{}, Logger: zap.NewNop()}
		if _, err := all.Build(f.Driver, d); err != nil {
			var ce *config.ConfigError
			if errors.As(err, &ce) || strings.HasPrefix(err.Error(), site.Source+":") {
				errs = append(errs, err)
				continue
			}
			errs = append(errs, &config.ConfigError{File: site.Source, Line: f.DriverLine, Path: fmt.Sprintf("fleets[%d].driver", i), Msg: err.Error()})
		}
	}
	return errors.Join(errs...)
}
