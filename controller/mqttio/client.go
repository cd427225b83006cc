package mqttio

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/switchd/switchd/config"
)

// Connection tuning shared by Source and Publisher.
const (
	connectTimeout = 5 * time.Second
	// connectRetryInterval is the pause between attempts while the first
	// connection has never succeeded; it also bounds how long Close waits for
	// paho's connect loop, which sleeps uninterruptibly.
	connectRetryInterval = 2 * time.Second
	// maxReconnectInterval caps paho's exponential back-off after a lost
	// connection: a broker back from a restart is found within ~10 s.
	maxReconnectInterval = 10 * time.Second
	keepAlive            = 30 * time.Second
	// writeTimeout bounds a blocked socket write, so a wedged broker turns
	// into a lost connection instead of a stuck publisher.
	writeTimeout      = 10 * time.Second
	publishTimeout    = 5 * time.Second
	subscribeTimeout  = 10 * time.Second
	subscribeRetry    = 2 * time.Second
	disconnectQuiesce = 250 * time.Millisecond
	// closeWait bounds how long Close waits for paho to reach the
	// disconnected state; its reconnect loop sleeps up to
	// maxReconnectInterval between attempts and only then sees the request.
	closeWait = maxReconnectInterval + connectTimeout
)

// brokerURL returns the broker to connect to: Broker, or the embedded
// broker's address when Broker is empty.
func brokerURL(c config.MQTTConfig) (*url.URL, error) {
	raw := c.Broker
	if raw == "" {
		if c.Embedded == "" {
			return nil, errors.New("no broker: set broker or embedded")
		}
		raw = "tcp://" + c.Embedded
	}
	if !strings.Contains(raw, "://") {
		return nil, fmt.Errorf("broker %q: want a URL such as tcp://host:1883", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("broker %q: %w", raw, err)
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
	default:
		return nil, fmt.Errorf("broker %q: unsupported scheme %q (want tcp, mqtt, ssl, tls, mqtts, ws or wss)", raw, u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("broker %q: no host", raw)
	}
	return u, nil
}

// isTLSScheme reports whether paho speaks TLS for a broker URL scheme.
func isTLSScheme(scheme string) bool {
	switch scheme {
	case "ssl", "tls", "mqtts", "wss":
		return true
	}
	return false
}

// tlsConfig builds the TLS settings from the configured PEM files. It reads
// local files only. It returns nil for a plain-text broker and refuses TLS
// files with one, so a certificate never silently goes unused.
func tlsConfig(c config.MQTTConfig, u *url.URL) (*tls.Config, error) {
	files := c.CAFile != "" || c.CertFile != "" || c.KeyFile != ""
	if !isTLSScheme(u.Scheme) {
		if files {
			return nil, fmt.Errorf("tls files set but broker %q is not tls (use ssl://, mqtts:// or wss://)", u.Redacted())
		}
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca file %s: no pem certificate", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("tls client certificate needs both cert file and key file")
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// passwordFromFile returns a paho credentials provider that reads the
// password from file at each (re)connection, so that a rotated password is
// used without a restart. When the file cannot be read (being rewritten,
// emptied) it gives the last password read, the one the site file was
// loaded with at first: the broker then says whether it still holds.
func passwordFromFile(user, loaded, file string) mqtt.CredentialsProvider {
	var mu sync.Mutex
	last := loaded
	return func() (string, string) {
		mu.Lock()
		defer mu.Unlock()
		if b, err := os.ReadFile(file); err == nil {
			if pw := strings.TrimSpace(string(b)); pw != "" && len(b) <= maxPasswordFileBytes {
				last = pw
			}
		}
		return user, last
	}
}

// clientOptions builds the paho options common to every client of the
// package: one broker, credentials, TLS, clean sessions, automatic
// reconnection and a first connection retried in the background.
func clientOptions(c config.MQTTConfig, clientID string) (*mqtt.ClientOptions, error) {
	u, err := brokerURL(c)
	if err != nil {
		return nil, err
	}
	tc, err := tlsConfig(c, u)
	if err != nil {
		return nil, err
	}
	o := mqtt.NewClientOptions()
	o.AddBroker(u.String())
	o.SetClientID(clientID)
	o.SetUsername(c.Username)
	o.SetPassword(c.Password)
	if c.PasswordFile != "" {
		o.SetCredentialsProvider(passwordFromFile(c.Username, c.Password, c.PasswordFile))
	}
	if tc != nil {
		o.SetTLSConfig(tc)
	}
	// A clean session: switchd wants the latest value of each signal, not
	// a backlog queued while it was away (retained messages give the
	// latest on subscribe), and subscriptions are made on every connect.
	o.SetCleanSession(true)
	o.SetAutoReconnect(true)
	o.SetMaxReconnectInterval(maxReconnectInterval)
	o.SetConnectRetry(true)
	o.SetConnectRetryInterval(connectRetryInterval)
	o.SetConnectTimeout(connectTimeout)
	o.SetKeepAlive(keepAlive)
	o.SetWriteTimeout(writeTimeout)
	// Messages are handled one at a time, in the order they arrived. With
	// SetOrderMatters(false) paho starts a goroutine per message, so two
	// messages of one signal arriving together are handled in either order
	// and the older is rejected as out of order: measured, 5-15% of a burst
	// over five topics and ~30% on one topic, at no gain in throughput.
	// paho advises false "unless order is important"; here it is. Ordered
	// delivery is safe because the handlers never block and never call the
	// client (SourceOptions' callbacks must be quick and must not call the
	// Source): a blocking handler would stall the whole connection.
	o.SetOrderMatters(true)
	return o, nil
}

// clientIDOrRandom returns id, or base plus a random suffix when id is empty:
// two clients with one id make the broker drop each other in turn.
func clientIDOrRandom(id, base string) string {
	if id != "" {
		return id
	}
	return base + "-" + randomSuffix()
}

// randomSuffix returns 8 random hex digits.
func randomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// checkTopicName checks a topic switchd subscribes to or publishes on: one
// exact topic, so no wildcard, no NUL, at most the protocol's 65535 bytes.
func checkTopicName(topic string) error {
	switch {
	case topic == "":
		return errors.New("empty topic")
	case len(topic) > 65535:
		return fmt.Errorf("topic of %d bytes, want at most 65535", len(topic))
	case strings.ContainsAny(topic, "+#\x00"):
		return fmt.Errorf("topic %q: wildcards (+, #) and NUL are not allowed", topic)
	}
	return nil
}

// waitDisconnected disconnects c and waits until paho has left its connect
// and reconnect loops, at most closeWait. connectToken is the token of the
// first Connect: it completes once the initial retry loop has ended.
func waitDisconnected(c mqtt.Client, connectToken mqtt.Token) {
	c.Disconnect(uint(disconnectQuiesce / time.Millisecond))
	deadline := time.NewTimer(closeWait)
	defer deadline.Stop()
	if connectToken != nil {
		select {
		case <-connectToken.Done():
		case <-deadline.C:
			return
		}
	}
	// With auto-reconnect paho reports "connected" while it is still in
	// its reconnect loop, and false once the disconnection is complete.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for c.IsConnected() {
		select {
		case <-tick.C:
		case <-deadline.C:
			return
		}
	}
}
