package config

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/internal/strictyaml"
)

// aclSection is one user's entry under mqtt.acl.
type aclSection struct {
	// Publish lists the inputs the user may publish: signal names,
	// price_forecast, or all.
	Publish strictyaml.NameList `yaml:"publish"`
	// ReadState lets the user read the state topics.
	ReadState bool `yaml:"read_state"`
}

// isLoopbackHost reports whether host (of a host:port) is loopback.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// embeddedAddrProblem says what is wrong with the embedded broker's
// address, or "" when nothing is: beyond loopback the broker needs a
// users_file, or allow_anonymous: true said out loud.
func embeddedAddrProblem(m *mqttSection) string {
	if msg := hostPortProblem(m.Embedded); msg != "" {
		return msg
	}
	host, _, _ := net.SplitHostPort(m.Embedded)
	if isLoopbackHost(host) || m.UsersFile != "" || (m.AllowAnonymous != nil && *m.AllowAnonymous) {
		return ""
	}
	return fmt.Sprintf("%q is not a loopback address: beyond loopback the embedded broker needs users_file (a mosquitto_passwd file; clients log in, with rights from acl), or allow_anonymous: true to let anyone who reaches it publish signals", m.Embedded)
}

// DialAddr returns the address switchd dials to reach a broker listening
// on addr: the loopback address when addr is on every interface.
func DialAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if ip != nil && ip.To4() == nil {
			return net.JoinHostPort("::1", port)
		}
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// validateEmbeddedAuth reads mqtt.allow_anonymous, users_file and acl into
// s.Daemon.MQTT. They configure the embedded broker only.
func (f *siteFile) validateEmbeddedAuth(l *strictyaml.Loader, s *Site, dir string) {
	m := f.MQTT
	if m == nil {
		return
	}
	c := &s.Daemon.MQTT
	if m.AllowAnonymous != nil {
		c.AllowAnonymous = *m.AllowAnonymous
	}
	keys := []string{"mqtt.allow_anonymous", "mqtt.users_file", "mqtt.acl"}
	if !l.Has("mqtt.embedded") {
		for _, k := range keys {
			if l.Has(k) {
				l.Errorf(k, "configures the embedded broker: give embedded, or set these rights in your broker")
			}
		}
		return
	}
	var users map[string]bool
	if l.Given("mqtt.users_file", m.UsersFile) {
		path := resolvePath(dir, m.UsersFile)
		var msg string
		if users, msg = passwordFileUsers(path); msg != "" {
			l.Errorf("mqtt.users_file", "%s", msg)
		} else {
			c.UsersFile = path
		}
	}
	if len(m.ACL) > 0 && !l.Has("mqtt.users_file") {
		l.Errorf("mqtt.acl", "needs users_file: the rights are given to its users")
		return
	}
	for _, e := range m.ACL {
		if users != nil && !users[e.Key] {
			l.Errorf(e.Path, "user %q is not in %s (add it with mosquitto_passwd)", e.Key, c.UsersFile)
			continue
		}
		if e.Key == c.Username || e.Key == c.ClientID {
			l.Errorf(e.Path, "%q is switchd's own user name: give publishers and readers their own", e.Key)
			continue
		}
		acl := UserACL{ReadState: e.Value.ReadState}
		for i, name := range e.Value.Publish {
			p := strictyaml.IndexPath(strictyaml.JoinPath(e.Path, "publish"), i)
			switch _, err := switchd.ParseSignal(name); {
			case name == "all":
				for _, sig := range switchd.AllSignals {
					acl.Publish = append(acl.Publish, sig.String())
				}
				acl.Publish = append(acl.Publish, ForecastKey)
			case name == ForecastKey || err == nil:
				acl.Publish = append(acl.Publish, name)
			default:
				l.Errorf(p, "%v (or %s, or all)", err, ForecastKey)
			}
		}
		if c.ACL == nil {
			c.ACL = map[string]UserACL{}
		}
		c.ACL[e.Key] = acl
	}
}

// passwordFileUsers reads the user names of a Mosquitto password file
// (user:hash lines), or says what is wrong. The hashes are checked when
// the broker starts.
func passwordFileUsers(path string) (map[string]bool, string) {
	if msg := fileProblem(path); msg != "" {
		return nil, msg
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Sprintf("cannot read %s: %v", path, pathErr(err))
	}
	defer fh.Close()
	users := map[string]bool{}
	sc := bufio.NewScanner(fh)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" || !strings.HasPrefix(hash, "$") {
			return nil, fmt.Sprintf("%s:%d: want user:hash as mosquitto_passwd writes it (a plain-text password is refused)", path, n)
		}
		users[user] = true
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Sprintf("cannot read %s: %v", path, err)
	}
	if len(users) == 0 {
		return nil, fmt.Sprintf("%s has no users (add one with mosquitto_passwd)", path)
	}
	return users, ""
}

// embeddedWarnings returns what is valid but unwise about the embedded
// broker: open to the network without authentication.
func embeddedWarnings(l *strictyaml.Loader, s *Site) []string {
	c := &s.Daemon.MQTT
	if c.Embedded == "" || !c.AllowAnonymous {
		return nil
	}
	host, _, _ := net.SplitHostPort(c.Embedded)
	if isLoopbackHost(host) {
		return nil
	}
	return []string{l.Warning("mqtt.allow_anonymous", "the embedded broker on %q lets anyone who reaches it in without a password: any of them can publish signals (a price, a grid load) and so steer the site; give users_file and acl instead", c.Embedded)}
}
