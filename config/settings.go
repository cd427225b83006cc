package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/internal/strictyaml"
	"gopkg.in/yaml.v3"
)

// driverSettings is a fleet's `settings:` block, decoded by the same strict
// loader as the rest of the site file, so a driver's errors name the site
// file, the line and the key path like every other configuration error.
type driverSettings struct {
	file string     // the site file, for messages
	path string     // key path of the block, e.g. fleets[0].settings
	node *yaml.Node // the block; Kind 0 when absent
	dir  string     // relative paths resolve against it
}

var _ switchd.Settings = (*driverSettings)(nil)

// DriverSettings returns fleet i's driver settings.
func (s *Site) DriverSettings(i int) switchd.Settings {
	f := &s.Fleets[i]
	return &driverSettings{file: s.Source, path: strictyaml.JoinPath(strictyaml.IndexPath("fleets", i), "settings"), node: &f.Settings, dir: filepath.Dir(s.Source)}
}

// ParseSettings reads a settings block from its own YAML text (for
// `switchd probe`, whose flags become a settings block); name is used in
// messages and relative paths in it resolve against dir, as a site file's
// resolve against the site file's folder.
func ParseSettings(name, dir string, data []byte) (switchd.Settings, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	n := &yaml.Node{}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		n = doc.Content[0]
	}
	return &driverSettings{file: name, path: "settings", node: n, dir: dir}, nil
}

// Decode implements switchd.Settings.
func (d *driverSettings) Decode(v any) error {
	if d.node == nil || d.node.Kind == 0 || strictyaml.IsNull(d.node) {
		return nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("settings: decode into %T: want a non-nil pointer", v)
	}
	l := strictyaml.NewLoader(d.file)
	l.SetLine(d.path, d.node.Line)
	if d.node.Kind != yaml.MappingNode {
		l.Failf(d.path, d.node.Line, "must be a mapping (got %s)", strictyaml.Describe(d.node))
		return l.Err()
	}
	func() {
		// Never panic on input: a schema the walk cannot handle is an
		// error, not a crash.
		defer func() {
			if r := recover(); r != nil {
				l.Add(d.node.Line, d.path, fmt.Sprintf("cannot decode: %v", r))
			}
		}()
		l.Decode(d.node, rv.Elem(), d.path)
	}()
	return l.Err()
}

// Errorf implements switchd.Settings: an error at the line of key (or of
// the nearest enclosing key present).
func (d *driverSettings) Errorf(key, format string, args ...any) error {
	return &ConfigError{File: d.file, Line: d.lineOf(key), Path: strictyaml.JoinPath(d.path, key), Msg: fmt.Sprintf(format, args...)}
}

// lineOf finds the line of a dotted key path inside the block.
func (d *driverSettings) lineOf(key string) int {
	n := d.node
	if n == nil {
		return 0
	}
	line := n.Line
	for _, part := range strings.Split(key, ".") {
		if n.Kind != yaml.MappingNode {
			break
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == part {
				line, next = n.Content[i].Line, n.Content[i+1]
				break
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	return line
}

// Resolve implements switchd.Settings.
func (d *driverSettings) Resolve(p string) string {
	if p == "" {
		return p
	}
	return resolvePath(d.dir, p)
}

// readDevicesFile reads a device list: one host[:port] per line, or CSV
// lines "host[:port],secret" where secret is file:PATH or env:NAME (a
// per-device credential reference, never the secret itself). Blank lines
// and lines starting with # are skipped; a header line "addr,secret" may
// come first. Problems name the file and line.
func readDevicesFile(path string) ([]switchd.Device, error) {
	if msg := fileProblem(path); msg != "" {
		return nil, errors.New(msg)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []switchd.Device
	var errs []error
	seen := map[string]int{}
	sc := bufio.NewScanner(io.LimitReader(f, 256<<20))
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for ln := 1; sc.Scan(); ln++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		addr, secret, _ := strings.Cut(line, ",")
		addr, secret = strings.TrimSpace(addr), strings.TrimSpace(secret)
		if first := len(out) == 0 && len(errs) == 0; first && strings.EqualFold(addr, "addr") {
			continue // a header
		}
		switch {
		case addr == "" || strings.ContainsAny(addr, " \t\"'"):
			errs = append(errs, fmt.Errorf("%s:%d: %q is not a host[:port]", path, ln, addr))
			continue
		case secret != "" && !strings.HasPrefix(secret, "file:") && !strings.HasPrefix(secret, "env:"):
			errs = append(errs, fmt.Errorf("%s:%d: credential %q: want file:PATH or env:NAME (never the secret itself)", path, ln, secret))
			continue
		}
		if prev, dup := seen[addr]; dup {
			errs = append(errs, fmt.Errorf("%s:%d: duplicate device %q (also line %d)", path, ln, addr, prev))
			continue
		}
		seen[addr] = ln
		if strings.HasPrefix(secret, "file:") {
			secret = "file:" + resolvePath(filepath.Dir(path), strings.TrimPrefix(secret, "file:"))
		}
		out = append(out, switchd.Device{Addr: addr, Secret: secret})
		if len(out) > maxFleetDevices {
			return nil, fmt.Errorf("%s: more than %d devices", path, maxFleetDevices)
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", path, err))
	}
	if len(out) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%s: lists no device", path))
	}
	return out, errors.Join(errs...)
}
