package config

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"strings"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/internal/strictyaml"
)

// validatePublisherKeys reads signals.<name>.publisher_key into
// s.Daemon.Signals: each signal with a key accepts only messages signed by
// it. A key is given inline (the base64 of the 32-byte key, or of its DER
// SubjectPublicKeyInfo, or a PEM block) or as the path of a file holding
// one (relative to the site file), such as the publisher.pub that `openssl
// pkey -pubout` writes.
func (f *siteFile) validatePublisherKeys(l *strictyaml.Loader, s *Site, dir string) {
	for _, e := range f.Signals {
		p := strictyaml.JoinPath(e.Path, "publisher_key")
		if !l.Given(p, e.Value.PublisherKey) {
			continue
		}
		sig, err := switchd.ParseSignal(e.Key)
		switch {
		case err != nil && e.Key != ForecastKey:
			continue // validateSignals reported the name
		case !l.Has("mqtt"):
			l.Errorf(p, "needs an mqtt section: there is no broker to read signed messages from")
			continue
		}
		key, msg := ParsePublisherKey(e.Value.PublisherKey, dir)
		if msg != "" {
			l.Errorf(p, "%s", msg)
			continue
		}
		if e.Key == ForecastKey {
			s.Daemon.Forecast.PublisherKey = key
		} else {
			s.Daemon.Signals[sig].PublisherKey = key
		}
	}
}

// validateDRKey reads demand_response.publisher_key into s.DR: events are
// then accepted only signed by it, in the envelope of signed signals.
func (f *siteFile) validateDRKey(l *strictyaml.Loader, s *Site, dir string) {
	const p = "demand_response.publisher_key"
	if f.DR == nil || !l.Given(p, f.DR.PublisherKey) {
		return
	}
	if !l.Has("mqtt") {
		l.Errorf(p, "needs an mqtt section: there is no broker to read signed events from")
		return
	}
	key, msg := ParsePublisherKey(f.DR.PublisherKey, dir)
	if msg != "" {
		l.Errorf(p, "%s", msg)
		return
	}
	s.DR.PublisherKey = key
}

// maxKeyFileBytes bounds a publisher key file: a PEM public key is about
// 113 bytes, so anything much bigger is the wrong file.
const maxKeyFileBytes = 16 << 10

// ParsePublisherKey reads an Ed25519 public key written inline as base64
// (of the raw 32 bytes, or of the DER SubjectPublicKeyInfo) or PEM ("PUBLIC
// KEY"), or else the path of a file (resolved against dir) holding one of
// those. It returns the key, or "" and what is wrong.
func ParsePublisherKey(v, dir string) (ed25519.PublicKey, string) {
	v = strings.TrimSpace(v)
	if key, msg, ok := inlineKey(v); ok {
		return key, msg
	}
	path := resolvePath(dir, v)
	if msg := fileProblem(path); msg != "" {
		if b, err := base64.StdEncoding.DecodeString(v); err == nil {
			return nil, fmt.Sprintf("base64 of %d bytes, not an Ed25519 public key (32 bytes, or its DER SubjectPublicKeyInfo), nor a file: %s", len(b), msg)
		}
		return nil, "not a base64 or PEM Ed25519 public key, nor a file: " + msg
	}
	fi, err := os.Stat(path)
	if err == nil && fi.Size() > maxKeyFileBytes {
		return nil, fmt.Sprintf("%s is larger than %d KiB: not a public key file", path, maxKeyFileBytes>>10)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Sprintf("cannot read %s: %v", path, pathErr(err))
	}
	key, msg, ok := inlineKey(strings.TrimSpace(string(b)))
	if !ok {
		return nil, fmt.Sprintf("%s holds no Ed25519 public key (want PEM from `openssl pkey -pubout`, or base64)", path)
	}
	if msg != "" {
		return nil, path + ": " + msg
	}
	return key, ""
}

// inlineKey parses v as a PEM block or base64; ok is false when v looks like
// neither (it may then be a path).
func inlineKey(v string) (key ed25519.PublicKey, msg string, ok bool) {
	if strings.HasPrefix(v, "-----BEGIN") {
		block, _ := pem.Decode([]byte(v))
		switch {
		case block == nil:
			return nil, "a PEM block that does not decode", true
		case strings.Contains(block.Type, "PRIVATE"):
			return nil, "a private key: give the publisher's public key (openssl pkey -in publisher.key -pubout), and keep the private key with the publisher", true
		case block.Type != "PUBLIC KEY":
			return nil, fmt.Sprintf("a PEM %q block, want \"PUBLIC KEY\"", block.Type), true
		}
		key, msg = spkiKey(block.Bytes)
		return key, msg, true
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, "", false
	}
	if len(b) == ed25519.PublicKeySize {
		return ed25519.PublicKey(b), "", true
	}
	if key, msg = spkiKey(b); msg == "" {
		return key, "", true
	}
	// Paths such as keys/pub are valid base64 too: the caller tries a file.
	return nil, "", false
}

// spkiKey parses a DER SubjectPublicKeyInfo that must hold an Ed25519 key.
func spkiKey(der []byte) (ed25519.PublicKey, string) {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Sprintf("not a public key: %v", err)
	}
	key, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Sprintf("a %T public key, want Ed25519", k)
	}
	return key, ""
}
