package mqttio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"go.uber.org/zap"
)

// Broker is an MQTT broker running in-process, for a site without one: the
// daemon's Source and the demo's Publisher then talk to it over loopback
// TCP exactly as they would to Mosquitto.
//
// On a loopback address and without a password file it lets every client
// in (whoever can reach it can already run code on this host) but one:
// switchd's own client ID can be reserved (see BrokerOptions). With a
// password file (BrokerOptions.PasswordFile) clients log in as its users,
// each with its own topic rights (Account). StartBrokerWith refuses to
// listen beyond loopback without a password file unless AllowAnonymous
// says so, and then warns.
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
	// ReservedUsername, when set, is the user name switchd logs in with
	// (with ReservedPassword): it may do anything, and so may a client
	// with the reserved ID only under that name.
	ReservedUsername string
	// PasswordFile, when set, is a Mosquitto password file
	// (ReadPasswordFile): its users log in with their passwords and get
	// the rights Accounts gives them (none when absent there). It is read
	// at start and again when it changes.
	PasswordFile string
	Accounts     map[string]Account
	// AllowAnonymous lets clients without a user name in with every right.
	// Without a password file on a loopback address that is the default;
	// elsewhere it must be asked for, and the broker warns at start.
	AllowAnonymous bool
}

// StartBrokerWith is StartBroker with options.
func StartBrokerWith(addr string, log *zap.Logger, o BrokerOptions) (*Broker, error) {
	if log == nil {
		log = zap.NewNop()
	}
	hook, err := newAuthHook(addr, log, o)
	if err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
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
	if err := server.AddHook(hook, nil); err != nil {
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

// isLoopback reports whether addr (host:port) is on a loopback interface.
func isLoopback(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("address %q: %w", addr, err)
	}
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

// newAuthHook checks the authentication options for a broker on addr and
// builds its hook: beyond loopback, a password file or an explicit
// AllowAnonymous (then with a warning) is required.
func newAuthHook(addr string, log *zap.Logger, o BrokerOptions) (*authHook, error) {
	loopback, err := isLoopback(addr)
	if err != nil {
		return nil, err
	}
	switch {
	case !loopback && o.PasswordFile == "" && !o.AllowAnonymous:
		return nil, fmt.Errorf("address %q is not loopback: beyond loopback the embedded broker needs a password file (clients log in, each with its own topics), or anonymous access allowed explicitly", addr)
	case !loopback && o.AllowAnonymous:
		log.Warn("EMBEDDED MQTT BROKER OPEN TO THE NETWORK: anonymous clients may connect and publish any signal; set a password file", zap.String("addr", addr))
	}
	h := &authHook{
		log: log.Named("broker"), id: o.ReservedClientID, user: o.ReservedUsername, password: []byte(o.ReservedPassword),
		anonymous: o.AllowAnonymous || (loopback && o.PasswordFile == ""),
		accounts:  o.Accounts, file: o.PasswordFile,
	}
	if h.file != "" {
		users, err := ReadPasswordFile(h.file)
		if err != nil {
			return nil, err
		}
		if _, clash := users[h.user]; clash && h.user != "" {
			return nil, fmt.Errorf("password file %s: user %q is switchd's own: pick another name", h.file, h.user)
		}
		fi, err := os.Stat(h.file)
		if err != nil {
			return nil, fmt.Errorf("password file: %w", err)
		}
		h.hash, h.mod, h.size = users, fi.ModTime(), fi.Size()
	}
	return h, nil
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
