package config

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/switchd/switchd/internal/strictyaml"
)

// HA is the site's high-availability settings: two or three switchd
// instances elect a leader through etcd, and only the leader commands
// devices and takes overrides. Nil (no `ha:` section) means one instance,
// no etcd.
type HA struct {
	// Endpoints are the etcd client URLs, e.g. http://10.0.0.5:2379.
	Endpoints []string
	// Name is this instance's name, unique among the site's instances;
	// default the host name.
	Name string
	// Advertise is this instance's HTTP address as the other instances
	// and operators reach it (followers name the leader's); default the
	// http listen address.
	Advertise string
	// LeaseTTL is the leader's lease: a leader that stops renewing it
	// (dead, paused, cut off) loses the term this long after its last
	// renewal. Default 5s, at least 2s.
	LeaseTTL time.Duration
	// Prefix is the etcd key prefix of the election; commands are fenced
	// under Prefix+"/commands". Default /switchd/<site>/leader.
	Prefix string
	// Username and Password authenticate to etcd (optional).
	Username, Password string
	// CAFile, CertFile and KeyFile configure TLS to etcd (optional).
	CAFile, CertFile, KeyFile string
}

// DefaultHALeaseTTL is the lease TTL without `ha.lease_ttl`.
const DefaultHALeaseTTL = 5 * time.Second

// haSection is the ha section as written.
type haSection struct {
	Endpoints    []string             `yaml:"endpoints"`
	Name         string               `yaml:"name"`
	Advertise    string               `yaml:"advertise"`
	LeaseTTL     *strictyaml.Duration `yaml:"lease_ttl"`
	Prefix       string               `yaml:"prefix"`
	Username     string               `yaml:"username"`
	PasswordFile string               `yaml:"password_file"`
	PasswordEnv  string               `yaml:"password_env"`
	CAFile       string               `yaml:"ca_file"`
	CertFile     string               `yaml:"cert_file"`
	KeyFile      string               `yaml:"key_file"`
}

// validateHA fills s.HA; it runs after the site and http sections.
func (f *siteFile) validateHA(l *strictyaml.Loader, s *Site, dir string) {
	if f.HA == nil {
		if l.Has("ha") {
			l.Errorf("ha", "empty: give at least endpoints, or delete the section")
		}
		return
	}
	h := f.HA
	c := &HA{Name: h.Name, Advertise: h.Advertise, LeaseTTL: DefaultHALeaseTTL, Prefix: h.Prefix, Username: h.Username}
	if len(h.Endpoints) == 0 {
		l.Errorf("ha.endpoints", "required: the etcd client URLs, e.g. [http://10.0.0.5:2379]")
	}
	for i, e := range h.Endpoints {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			l.Errorf(strictyaml.IndexPath("ha.endpoints", i), "%q is not an etcd client URL (http://host:port or https://host:port)", e)
			continue
		}
		c.Endpoints = append(c.Endpoints, e)
	}
	if c.Name == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			l.Errorf("ha.name", "required: the host name cannot be read (%v)", err)
		}
		c.Name = host
	}
	if strings.ContainsAny(c.Name, "/ \t\n") {
		l.Errorf("ha.name", "%q: no spaces or slashes", c.Name)
	}
	if c.Advertise == "" {
		c.Advertise = s.Daemon.HTTP.Listen
	}
	if h.LeaseTTL != nil {
		switch d := time.Duration(*h.LeaseTTL); {
		case d < 2*time.Second || d > time.Hour:
			l.Errorf("ha.lease_ttl", "must be between 2s and 1h (got %s)", strictyaml.FmtDuration(d))
		case d%time.Second != 0:
			l.Errorf("ha.lease_ttl", "whole seconds only, as etcd leases are (got %s)", strictyaml.FmtDuration(d))
		default:
			c.LeaseTTL = d
		}
	}
	if c.Prefix == "" {
		c.Prefix = "/switchd/" + s.Name + "/leader"
	} else if !strings.HasPrefix(c.Prefix, "/") || strings.HasSuffix(c.Prefix, "/") {
		l.Errorf("ha.prefix", "%q: must start with / and not end with one", c.Prefix)
	}
	f.haSecrets(l, c, h, dir)
	s.HA = c
}

// haSecrets reads the etcd password and checks the TLS files.
func (f *siteFile) haSecrets(l *strictyaml.Loader, c *HA, h *haSection, dir string) {
	var msg string
	switch {
	case h.PasswordFile != "" && h.PasswordEnv != "":
		l.Errorf("ha.password_env", "give either password_file or password_env, not both")
	case h.PasswordFile != "":
		if c.Password, msg = readSecret(resolvePath(dir, h.PasswordFile)); msg != "" {
			l.Errorf("ha.password_file", "%s", msg)
		}
	case h.PasswordEnv != "":
		if c.Password, msg = envSecret(h.PasswordEnv); msg != "" {
			l.Errorf("ha.password_env", "%s", msg)
		}
	}
	if c.Password != "" && c.Username == "" {
		l.Errorf("ha.username", "required with a password")
	}
	for _, p := range []struct {
		key, v string
		dst    *string
	}{{"ca_file", h.CAFile, &c.CAFile}, {"cert_file", h.CertFile, &c.CertFile}, {"key_file", h.KeyFile, &c.KeyFile}} {
		if p.v == "" {
			continue
		}
		*p.dst = resolvePath(dir, p.v)
		if msg := fileProblem(*p.dst); msg != "" {
			l.Errorf("ha."+p.key, "%s", msg)
		}
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		l.Errorf("ha.cert_file", "give cert_file and key_file together")
	}
}

// String describes the HA settings for logs.
func (h *HA) String() string {
	return fmt.Sprintf("instance %s, etcd %s, lease %s, prefix %s", h.Name, strings.Join(h.Endpoints, ","), h.LeaseTTL, h.Prefix)
}
