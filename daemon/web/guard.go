package web

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// DefaultRejectLogInterval is the least time between two log lines about
// refused requests of one kind: a client hammering with a wrong token or a
// foreign Host must not flood the log. Every refusal is still counted.
const DefaultRejectLogInterval = 10 * time.Second

// AllowedHosts returns the Host names the HTTP server answers: the host of
// its listen address, localhost and the loopback addresses, and extra (the
// site's http.hosts), lower case. Any IP address is answered as well (see
// NewHandler's Hosts): only a name can be rebound by DNS.
func AllowedHosts(listen string, extra []string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, _, err := net.SplitHostPort(listen); err == nil && h != "" {
		hosts = append(hosts, normalHost(h))
	}
	for _, h := range extra {
		hosts = append(hosts, normalHost(h))
	}
	return hosts
}

// normalHost lower-cases a host name and drops a final dot.
func normalHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// hostCheck answers 421 Misdirected Request to a request whose Host header
// names neither an allowed host nor an IP address. A web page whose domain
// an attacker re-points to this machine (DNS rebinding) sends its own
// domain as Host, so it cannot read state or metrics through a browser.
func hostCheck(allowed []string, rl *rejectLogger, next http.Handler) http.Handler {
	set := make(map[string]bool, len(allowed))
	for _, h := range allowed {
		set[normalHost(h)] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = normalHost(strings.Trim(host, "[]"))
		if host != "" && (set[host] || net.ParseIP(host) != nil) {
			next.ServeHTTP(w, r)
			return
		}
		rl.log(zapcore.WarnLevel, "request refused: host not served", zap.String("reason", "host"),
			zap.String("host", r.Host), zap.String("remote", r.RemoteAddr), zap.String("path", r.URL.Path))
		writeError(w, http.StatusMisdirectedRequest, "host "+strings.TrimSpace(r.Host)+" is not served here: add it to http.hosts in the site config")
	})
}

// rejectLogger logs refused requests, at most one line per message per
// interval; the next line says how many were not logged. Safe for
// concurrent use.
type rejectLogger struct {
	l        *zap.Logger
	interval time.Duration
	mu       sync.Mutex
	last     map[string]rejectState // by message
}

// rejectState is the throttle state of one message.
type rejectState struct {
	at         time.Time
	suppressed int
}

func newRejectLogger(l *zap.Logger, interval time.Duration) *rejectLogger {
	if interval <= 0 {
		interval = DefaultRejectLogInterval
	}
	return &rejectLogger{l: l, interval: interval, last: map[string]rejectState{}}
}

// log writes msg at level lvl unless a line with msg was written less than
// the interval ago; then it only counts.
func (rl *rejectLogger) log(lvl zapcore.Level, msg string, fields ...zap.Field) {
	rl.logTo(rl.l, lvl, msg, fields...)
}

// logTo is log writing to l (a logger With request fields).
func (rl *rejectLogger) logTo(l *zap.Logger, lvl zapcore.Level, msg string, fields ...zap.Field) {
	now := time.Now()
	rl.mu.Lock()
	st := rl.last[msg]
	if !st.at.IsZero() && now.Sub(st.at) < rl.interval {
		st.suppressed++
		rl.last[msg] = st
		rl.mu.Unlock()
		return
	}
	suppressed := st.suppressed
	rl.last[msg] = rejectState{at: now}
	rl.mu.Unlock()
	if ce := l.Check(lvl, msg); ce != nil {
		ce.Write(append(fields, zap.Int("suppressed", suppressed))...)
	}
}
