package mqttio

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/zap"
)

// Broker is an MQTT broker running in-process, for a site without one: the
// daemon's Source and the demo's Publisher then talk to it over loopback
// TCP exactly as they would to Mosquitto.
//
// It lets every client in (no authentication, no ACL) but one: switchd's
// own client ID can be reserved (see BrokerOptions). That is only safe
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
	return StartBrokerWith(addr, log, BrokerOptions{})
}

// DefaultMaxPacketSize bounds an MQTT packet the embedded broker reads, in
// bytes. A signal is a few dozen bytes; the largest valid messages are JSON
// inputs (DR events, price forecasts) of up to about 16 KiB and the
// daemon's own retained state, a few KiB per fleet. 256 KiB leaves room for
// a large site while a 100 MB packet is refused from its header, before
// mochi allocates a buffer for it.
const DefaultMaxPacketSize = 256 << 10

// BrokerOptions are the embedded broker's optional settings.
type BrokerOptions struct {
	// ReservedClientID, when set, is switchd's own client ID: a client
	// connecting with it must present ReservedPassword, so that no other
	// client can take the ID over (MQTT hands the session to the newcomer
	// and disconnects the holder) to knock switchd off the broker and make
	// it resubscribe.
	ReservedClientID string
	ReservedPassword string
	// MaxPacketSize bounds a packet in bytes; DefaultMaxPacketSize when 0.
	// A client sending a larger one is disconnected.
	MaxPacketSize uint32
}

// StartBrokerWith is StartBroker with options.
func StartBrokerWith(addr string, log *zap.Logger, o BrokerOptions) (*Broker, error) {
	if err := checkLoopback(addr); err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	if log == nil {
		log = zap.NewNop()
	}
	closing := new(atomic.Bool)
	if o.ReservedClientID != "" && o.ReservedPassword == "" {
		return nil, errors.New("embedded broker: a reserved client id needs a password")
	}
	caps := mochi.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = o.MaxPacketSize
	if caps.MaximumPacketSize == 0 {
		caps.MaximumPacketSize = DefaultMaxPacketSize
	}
	server := mochi.New(&mochi.Options{
		// Mochi logs through slog and, by default, to stdout at info level.
		Logger:       slog.New(&zapHandler{log: log.Named("broker"), closing: closing}),
		Capabilities: caps,
	})
	if err := server.AddHook(&reserveHook{id: o.ReservedClientID, password: []byte(o.ReservedPassword)}, nil); err != nil {
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

// reserveHook lets every client in and allows every topic, except that a
// client using the reserved ID must present its password.
type reserveHook struct {
	mochi.HookBase
	id       string
	password []byte
}

// ID names the hook.
func (h *reserveHook) ID() string { return "switchd-reserve-client-id" }

// Provides tells mochi which hook methods are implemented.
func (h *reserveHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mochi.OnConnectAuthenticate, mochi.OnACLCheck}, []byte{b})
}

// OnConnectAuthenticate refuses the reserved ID without its password; mochi
// answers "bad user name or password" and keeps the current holder.
func (h *reserveHook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	if h.id == "" || pk.Connect.ClientIdentifier != h.id {
		return true
	}
	return subtle.ConstantTimeCompare(pk.Connect.Password, h.password) == 1
}

// OnACLCheck allows every topic: the broker listens on loopback only.
func (h *reserveHook) OnACLCheck(*mochi.Client, string, bool) bool { return true }
