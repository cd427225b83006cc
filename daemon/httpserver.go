package daemon

import (
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/switchd/switchd/daemon/web"
)

// servedHosts are the Host names the HTTP server answers (web.AllowedHosts)
// plus this machine's host name, which a DNS-rebinding page cannot use.
func servedHosts(listen string, extra []string) []string {
	if name, err := os.Hostname(); err == nil && name != "" {
		extra = append(append([]string(nil), extra...), name)
	}
	return web.AllowedHosts(listen, extra)
}

// httpLimits bound what one HTTP client can hold of the daemon.
type httpLimits struct {
	// ReadHeaderTimeout cuts off a client that sends its headers slowly
	// (slowloris); ReadTimeout one that sends its body slowly.
	ReadHeaderTimeout, ReadTimeout time.Duration
	// WriteTimeout bounds writing a response (a client that does not
	// read); no endpoint streams, the largest answer is /metrics.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection without a request.
	IdleTimeout time.Duration
	// MaxConns caps open connections; at the cap, the longest idle one is
	// closed to make room, and a new connection waits only while every
	// connection is busy.
	MaxConns int
}

// defaultHTTPLimits are the limits of the daemon's HTTP server. The status
// page polls every few seconds and Prometheus scrapes; 256 connections is
// far above an operator's needs and far below the file-descriptor limit.
func defaultHTTPLimits() httpLimits {
	return httpLimits{
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxConns:          256,
	}
}

// newHTTPServer returns a server for h with limits lim, logging net/http's
// own errors (a handler's panic, a TLS handshake or accept failure) through
// log at warn level, and ln wrapped to enforce lim.MaxConns: serve the
// returned listener.
func newHTTPServer(h http.Handler, ln net.Listener, lim httpLimits, log *zap.Logger) (*http.Server, net.Listener) {
	errLog, err := zap.NewStdLogAt(log, zap.WarnLevel)
	if err != nil {
		errLog = zap.NewStdLog(log) // only for an invalid level; warn is valid
	}
	cl := newCapListener(ln, lim.MaxConns)
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      lim.WriteTimeout,
		IdleTimeout:       lim.IdleTimeout,
		ErrorLog:          errLog,
		ConnState:         cl.connState,
	}
	return srv, cl
}

// capListener caps the connections accepted and not yet closed. Unlike
// netutil.LimitListener, which only waits, it closes the longest idle
// keep-alive connection when the cap is reached: otherwise a client
// holding many idle connections would starve /healthz (20,000 of them once
// exhausted the daemon's file descriptors).
type capListener struct {
	net.Listener
	slots chan struct{} // one token per open connection
	woken chan struct{} // a connection went idle (one slot, non-blocking send)
	done  chan struct{} // closed by Close
	shut  sync.Once
	mu    sync.Mutex             // guards idle
	idle  map[net.Conn]time.Time // idle connections and since when
}

func newCapListener(ln net.Listener, maxConns int) *capListener {
	return &capListener{
		Listener: ln,
		slots:    make(chan struct{}, maxConns),
		woken:    make(chan struct{}, 1),
		done:     make(chan struct{}),
		idle:     map[net.Conn]time.Time{},
	}
}

// Accept waits for a free slot, closing the longest idle connection when
// there is none, then accepts.
func (l *capListener) Accept() (net.Conn, error) {
	for {
		select {
		case l.slots <- struct{}{}:
			return l.accept()
		default:
		}
		if l.closeOldestIdle() {
			continue
		}
		select {
		case l.slots <- struct{}{}:
			return l.accept()
		case <-l.woken:
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
}

// Close stops accepting, also while Accept waits for a slot.
func (l *capListener) Close() error {
	l.shut.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// accept accepts one connection, its slot already taken.
func (l *capListener) accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &capConn{Conn: c, release: func() { <-l.slots }}, nil
}

// closeOldestIdle closes the connection idle the longest, if any.
func (l *capListener) closeOldestIdle() bool {
	l.mu.Lock()
	var oldest net.Conn
	var since time.Time
	for c, t := range l.idle {
		if oldest == nil || t.Before(since) {
			oldest, since = c, t
		}
	}
	delete(l.idle, oldest)
	l.mu.Unlock()
	if oldest == nil {
		return false
	}
	_ = oldest.Close() // releases its slot
	return true
}

// connState is the server's ConnState hook: it tracks idle connections.
func (l *capListener) connState(c net.Conn, st http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st == http.StateIdle {
		l.idle[c] = time.Now()
		select {
		case l.woken <- struct{}{}:
		default:
		}
		return
	}
	delete(l.idle, c)
}

// capConn gives its slot back on the first Close.
type capConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// Close closes the connection and frees its slot.
func (c *capConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
