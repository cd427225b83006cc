package mqttio

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"go.uber.org/zap"
)

// Broker is an MQTT broker running in-process, for a site without one: the
// daemon's Source and the demo's Publisher then talk to it over loopback
// TCP exactly as they would to Mosquitto.
//
// It lets every client in (no authentication, no ACL). That is only safe
// because StartBroker refuses to listen anywhere but on a loopback address:
// whoever can reach it can already run code on this host. A site exposing
// MQTT to its network runs a real broker with authentication.
//
// Mochi's default limits apply: a subscriber more than 8192 QoS 1 messages
// behind loses messages. Signals come a few a second and only the latest
// of each matters, so that is headroom, not a constraint.
type Broker struct {
	server    *mochi.Server
	listener  *gatedTCP
	closeOnce sync.Once
	closing   *atomic.Bool // shared with the log handler
}

// StartBroker listens on addr (a loopback host:port; port 0 picks a free
// one) and serves MQTT until Close. Broker messages at warn level and above
// go to log.
func StartBroker(addr string, log *zap.Logger) (*Broker, error) {
	if err := checkLoopback(addr); err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	if log == nil {
		log = zap.NewNop()
	}
	closing := new(atomic.Bool)
	server := mochi.New(&mochi.Options{
		// Mochi logs through slog and, by default, to stdout at info level.
		Logger: slog.New(&zapHandler{log: log.Named("broker"), closing: closing}),
	})
	if err := server.AddHook(new(auth.AllowHook), nil); err != nil {
		return nil, fmt.Errorf("embedded broker: auth hook: %w", err)
	}
	tcp := &gatedTCP{TCP: listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})}
	// AddListener binds the socket, so an address in use fails here.
	if err := server.AddListener(tcp); err != nil {
		_ = server.Close()
		return nil, fmt.Errorf("embedded broker: listen %s: %w", addr, err)
	}
	if err := server.Serve(); err != nil {
		_ = server.Close()
		return nil, fmt.Errorf("embedded broker: serve: %w", err)
	}
	return &Broker{server: server, listener: tcp, closing: closing}, nil
}

// checkLoopback refuses an address that is not host:port on a loopback
// interface, since the broker lets everyone in.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("address %q: the embedded broker has no authentication and listens on loopback only (127.0.0.1 or ::1)", addr)
	}
	return nil
}

// Addr returns the address the broker listens on, with the port it got
// when asked for port 0.
func (b *Broker) Addr() string { return b.listener.Address() }

// Close disconnects every client, stops listening and waits for the client
// connections to end. It may be called more than once.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		// Clients cut off by the close make mochi warn "use of closed
		// network connection" for each; that is the close, not a fault.
		b.closing.Store(true)
		// Mochi's Close waits for its client goroutines; it never fails.
		// The gate first makes every accepted connection counted by it.
		b.listener.shut()
		_ = b.server.Close()
	})
	return nil
}

// zapHandler is a slog.Handler writing to zap at warn level and above: the
// broker's info lines (every connection) are noise in the daemon's log.
type zapHandler struct {
	log     *zap.Logger
	fields  []zap.Field
	group   string
	closing *atomic.Bool // set: the broker is closing, drop its complaints
}

// Enabled reports whether a level is logged: warn and above.
func (h *zapHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && (h.closing == nil || !h.closing.Load())
}

// Handle writes one record to zap.
func (h *zapHandler) Handle(_ context.Context, r slog.Record) error {
	fields := make([]zap.Field, 0, len(h.fields)+r.NumAttrs())
	fields = append(fields, h.fields...)
	r.Attrs(func(a slog.Attr) bool {
		fields = append(fields, h.field(a))
		return true
	})
	msg := r.Message
	if msg == "" {
		// Mochi logs connection errors with an empty message.
		msg = "broker warning"
	}
	if r.Level >= slog.LevelError {
		h.log.Error(msg, fields...)
	} else {
		h.log.Warn(msg, fields...)
	}
	return nil
}

// field converts a slog attribute, prefixing the current group.
func (h *zapHandler) field(a slog.Attr) zap.Field {
	key := a.Key
	if h.group != "" {
		key = h.group + "." + key
	}
	v := a.Value.Resolve()
	if v.Kind() == slog.KindAny {
		if err, ok := v.Any().(error); ok {
			return zap.NamedError(key, err)
		}
	}
	return zap.Any(key, v.Any())
}

// WithAttrs returns a handler adding attrs to every record.
func (h *zapHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := *h
	n.fields = append(append([]zap.Field(nil), h.fields...), make([]zap.Field, 0, len(attrs))...)
	for _, a := range attrs {
		n.fields = append(n.fields, h.field(a))
	}
	return &n
}

// WithGroup returns a handler that prefixes later keys with name.
func (h *zapHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	if n.group != "" {
		n.group += "." + name
	} else {
		n.group = name
	}
	return &n
}

var _ slog.Handler = (*zapHandler)(nil)
