package mqttio

import (
	"net"
	"net/url"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Status is the source's broker connection, for the status page, the state
// API and the log.
type Status struct {
	Broker    string    `json:"broker"`
	Connected bool      `json:"connected"`
	Since     time.Time `json:"since"`    // of the last change; the start counts as one
	Attempts  int       `json:"attempts"` // connection attempts since then
	// LastError says why the broker could not be reached or why the last
	// connection ended; "" while connected or before the first problem.
	LastError string `json:"last_error,omitempty"`
}

// Down-time log schedule: the first line after unreachableFirst, then
// after each doubling of the time down, at most one per unreachableMax.
// A broker down for an hour is seven lines, not one per attempt.
const (
	unreachableFirst = 10 * time.Second
	unreachableMax   = time.Hour
	// healthEvery is how often the watcher looks at the connection.
	healthEvery = time.Second
	// probeTimeout bounds the TCP probe that explains an unreachable
	// broker (paho does not say why a retried connect failed).
	probeTimeout = 2 * time.Second
)

// health is the connection's history; its own lock, because paho's
// callbacks and the HTTP handlers read and write it.
type health struct {
	mu      sync.Mutex
	broker  *url.URL
	up      bool
	since   time.Time
	tries   int
	lastErr string
	nextLog time.Duration // time down at which the next line is due
	logged  bool          // a down line was written since the last change
}

func (h *health) status() Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	return Status{Broker: h.broker.Redacted(), Connected: h.up, Since: h.since, Attempts: h.tries, LastError: h.lastErr}
}

func (h *health) attempt() {
	h.mu.Lock()
	h.tries++
	h.mu.Unlock()
}

// connected records a connection; it returns the time down and the attempts
// it took when the source was down and said so in the log (so the "connected"
// line can close that story), else zero.
func (h *health) connected(now time.Time) (down time.Duration, tries int, wasLogged bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	down, tries, wasLogged = now.Sub(h.since), h.tries, h.logged
	h.up, h.since, h.tries, h.lastErr, h.logged = true, now, 0, "", false
	return down, tries, wasLogged
}

func (h *health) lost(now time.Time, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.up, h.since, h.tries, h.logged = false, now, 0, false
	h.nextLog = unreachableFirst
	if err != nil {
		h.lastErr = err.Error()
	}
}

// Status returns the broker connection as of now.
func (s *Source) Status() Status { return s.health.status() }

// watch logs a broker that stays unreachable, on the doubling schedule,
// with the reason, until the source is closed.
func (s *Source) watch() {
	t := time.NewTicker(healthEvery)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		h := &s.health
		h.mu.Lock()
		down := time.Since(h.since)
		due := !h.up && down >= h.nextLog
		if due {
			h.nextLog = min(2*h.nextLog, h.nextLog+unreachableMax)
			h.logged = true
		}
		tries, lastErr := h.tries, h.lastErr
		h.mu.Unlock()
		if !due {
			continue
		}
		reason := lastErr
		if probe := probeBroker(h.broker); probe != "" || reason == "" {
			reason = probe
			if reason == "" {
				reason = "TCP connects, but the MQTT handshake fails (credentials, TLS or client ID?)"
			}
			h.mu.Lock()
			if !h.up {
				h.lastErr = reason
			}
			h.mu.Unlock()
		}
		s.log.Warn("mqtt broker unreachable: signals are not arriving",
			zap.String("broker", h.broker.Redacted()), zap.Duration("down_for", down.Round(time.Second)),
			zap.Int("attempts", tries), zap.String("reason", reason), zap.Duration("next_report_in", max(h.nextLog-down, 0).Round(time.Second)))
	}
}

// probeBroker dials the broker's TCP port and returns the error, or "" when
// it connects.
func probeBroker(u *url.URL) string {
	host := u.Host
	if u.Port() == "" {
		port := "1883"
		switch u.Scheme {
		case "ssl", "tls", "mqtts":
			port = "8883"
		case "ws":
			port = "80"
		case "wss":
			port = "443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	c, err := net.DialTimeout("tcp", host, probeTimeout)
	if err != nil {
		return err.Error()
	}
	c.Close()
	return ""
}
