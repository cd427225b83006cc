// Package inferencefake is a fake inference server for tests: it answers
// like vLLM started with --enable-sleep-mode and VLLM_SERVER_DEV_MODE=1
// (GET /v1/models, /health, /is_sleeping, /version, /metrics; POST
// /sleep?level=N, /wake_up), with Triton-style /v2/health/ready and model
// load/unload, and TGI-style /health when asked. It models a readiness
// delay after wake and a cold start after the engine is started, on an
// injectable clock, and injected faults: refused connections, hangs, 500s,
// garbage replies and a required bearer token.
//
// It shares no code with the drivers it tests: it imports neither the
// vllm nor the httpexec driver, only the standard library.
package inferencefake

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Health is what GET /health means.
type Health int

// Health styles.
const (
	// HealthVLLM: 200 while the engine process is up, asleep or not
	// (vLLM's /health does not prove the model can serve).
	HealthVLLM Health = iota
	// HealthTGI: 200 only when ready to serve, else 503
	// {"error":"unhealthy","error_type":"healthcheck"}.
	HealthTGI
)

// Fault is an injected failure.
type Fault int

// Faults.
const (
	FaultNone    Fault = iota
	FaultRefuse        // the listener is closed: connections are refused
	FaultHang          // requests are accepted and never answered
	Fault500           // every request gets a 500
	FaultGarbage       // every request gets 200 with a body that is not JSON
)

// Options configure a Server.
type Options struct {
	// Now is the clock for the readiness delays (default time.Now).
	Now func() time.Time
	// Model is the served model id (default "meta-llama/Llama-3.1-8B-Instruct").
	Model string
	// Token, when set, is the API key: requests must carry
	// "Authorization: Bearer <Token>". Like vLLM's --api-key it guards
	// only the /v1 routes, unless ProtectAll.
	Token      string
	ProtectAll bool
	// ReadyDelay is how long after a wake-up the server lists no model
	// and fails its health checks (warm-up).
	ReadyDelay time.Duration
	// ColdStart is how long after StartEngine the server is not ready
	// (model load).
	ColdStart time.Duration
	// Sleeping starts the server asleep, at level 1.
	Sleeping bool
	// NoSleepMode makes /sleep, /wake_up and /is_sleeping 404, as on a
	// server started without dev mode.
	NoSleepMode bool
	// NoMetrics makes /metrics 404.
	NoMetrics bool
	Health    Health
	// Version is what GET /version reports (default "0.9.2").
	Version string
}

// Server is one fake inference host.
type Server struct {
	opts Options
	srv  *http.Server
	wg   sync.WaitGroup
	done chan struct{} // closed by Close, releases hung requests

	mu        sync.Mutex
	addr      string
	ln        net.Listener // nil while refusing or stopped
	closed    bool
	fault     Fault
	stopped   bool // the engine process is down
	sleeping  bool
	level     int
	wokeAt    time.Time // last wake-up: warm-up runs ReadyDelay from here
	startedAt time.Time // last engine start: cold start runs from here
	running   int       // in-flight requests reported by /metrics
	calls     map[string]int
}

// New returns a server, awake and ready unless o.Sleeping.
func New(o Options) *Server {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Model == "" {
		o.Model = "meta-llama/Llama-3.1-8B-Instruct"
	}
	if o.Version == "" {
		o.Version = "0.9.2"
	}
	s := &Server{opts: o, done: make(chan struct{}), calls: map[string]int{}}
	if o.Sleeping {
		s.sleeping, s.level = true, 1
	}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	// One request per connection: a refused or stopped server must not
	// keep answering on a kept-alive connection.
	s.srv.SetKeepAlivesEnabled(false)
	return s
}

// Start listens on addr ("127.0.0.1:0" for any free port).
func (s *Server) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("inferencefake: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addr = ln.Addr().String()
	s.serveLocked(ln)
	return nil
}

// serveLocked serves ln in the background.
func (s *Server) serveLocked(ln net.Listener) {
	s.ln = ln
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(ln)
	}()
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Close stops the server and releases hung requests.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	s.mu.Unlock()
	_ = s.srv.Close()
	s.wg.Wait()
}

// SetFault injects f (FaultNone clears it).
func (s *Server) SetFault(f Fault) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
	return s.relistenLocked()
}

// StopEngine stops the engine process, as `systemctl stop` would: the
// port is closed until StartEngine.
func (s *Server) StopEngine() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	s.sleeping, s.level = false, 0
	return s.relistenLocked()
}

// StartEngine starts the engine process: the port opens at once and the
// server is ready ColdStart later.
func (s *Server) StartEngine() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped {
		return nil
	}
	s.stopped = false
	s.startedAt = s.opts.Now()
	return s.relistenLocked()
}

// relistenLocked opens or closes the listener to match the engine and the
// fault: closed while stopped or refusing, open otherwise, on the same
// address.
func (s *Server) relistenLocked() error {
	want := !s.stopped && s.fault != FaultRefuse && !s.closed
	switch {
	case want && s.ln == nil:
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			return fmt.Errorf("inferencefake: listen again: %w", err)
		}
		s.serveLocked(ln)
	case !want && s.ln != nil:
		_ = s.ln.Close()
		s.ln = nil
	}
	return nil
}

// SetSleeping puts the engine to sleep or wakes it, as another client
// would (drift).
func (s *Server) SetSleeping(sleeping bool, level int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setSleepingLocked(sleeping, level)
}

func (s *Server) setSleepingLocked(sleeping bool, level int) {
	if sleeping {
		s.sleeping, s.level = true, level
		return
	}
	if s.sleeping {
		s.sleeping, s.level = false, 0
		s.wokeAt = s.opts.Now()
	}
}

// SetRunning sets the number of in-flight requests /metrics reports.
func (s *Server) SetRunning(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running = n
}

// Sleeping reports whether the engine is asleep, and at which level.
func (s *Server) Sleeping() (bool, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sleeping, s.level
}

// Stopped reports whether the engine process is down.
func (s *Server) Stopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// Ready reports whether the server can serve now.
func (s *Server) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readyLocked()
}

func (s *Server) readyLocked() bool {
	now := s.opts.Now()
	return !s.stopped && !s.sleeping &&
		!now.Before(s.wokeAt.Add(s.opts.ReadyDelay)) && !now.Before(s.startedAt.Add(s.opts.ColdStart))
}

// Calls is how many requests "METHOD /path" received (faults included).
func (s *Server) Calls(methodPath string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[methodPath]
}

// serve answers one request.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls[r.Method+" "+r.URL.Path]++
	fault := s.fault
	s.mu.Unlock()
	switch fault {
	case FaultHang:
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return
	case Fault500:
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	case FaultGarbage:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{\"is_sleeping\": tru\x00e, \"data\": [{\"id\"\n<html>"))
		return
	}
	if !s.authorized(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "Unauthorized"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	path := r.URL.Path
	switch {
	case path == "/health" && r.Method == http.MethodGet:
		s.healthLocked(w)
	case path == "/v1/models" && r.Method == http.MethodGet:
		s.modelsLocked(w)
	case path == "/version" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]string{"version": s.opts.Version})
	case path == "/metrics" && r.Method == http.MethodGet && !s.opts.NoMetrics:
		s.metricsLocked(w)
	case path == "/is_sleeping" && r.Method == http.MethodGet && !s.opts.NoSleepMode:
		writeJSON(w, http.StatusOK, map[string]bool{"is_sleeping": s.sleeping})
	case path == "/sleep" && r.Method == http.MethodPost && !s.opts.NoSleepMode:
		level := 1
		if v := r.URL.Query().Get("level"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 2 {
				writeJSON(w, http.StatusBadRequest, map[string]string{"detail": "level must be 1 or 2"})
				return
			}
			level = n
		}
		if !s.sleeping {
			s.setSleepingLocked(true, level)
		}
		w.WriteHeader(http.StatusOK)
	case path == "/wake_up" && r.Method == http.MethodPost && !s.opts.NoSleepMode:
		s.setSleepingLocked(false, 0)
		w.WriteHeader(http.StatusOK)
	case path == "/v2/health/live" && r.Method == http.MethodGet:
		w.WriteHeader(http.StatusOK)
	case path == "/v2/health/ready" && r.Method == http.MethodGet:
		if s.readyLocked() {
			w.WriteHeader(http.StatusOK)
		} else {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	case strings.HasPrefix(path, "/v2/repository/models/") && r.Method == http.MethodPost:
		s.repositoryLocked(w, strings.TrimPrefix(path, "/v2/repository/models/"))
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not Found"})
	}
}

// authorized checks the bearer token where the server wants one.
func (s *Server) authorized(r *http.Request) bool {
	if s.opts.Token == "" || (!s.opts.ProtectAll && !strings.HasPrefix(r.URL.Path, "/v1")) {
		return true
	}
	return r.Header.Get("Authorization") == "Bearer "+s.opts.Token
}

func (s *Server) healthLocked(w http.ResponseWriter) {
	now := s.opts.Now()
	starting := now.Before(s.startedAt.Add(s.opts.ColdStart))
	if starting || (s.opts.Health == HealthTGI && !s.readyLocked()) {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "unhealthy", "error_type": "healthcheck"})
		return
	}
	w.WriteHeader(http.StatusOK)
}

// modelsLocked answers GET /v1/models. Like vLLM it lists the model while
// asleep; during a cold start it answers 503, and during the warm-up
// after a wake-up an empty list (a simplification that lets tests tell
// "answers" from "ready").
func (s *Server) modelsLocked(w http.ResponseWriter) {
	now := s.opts.Now()
	if now.Before(s.startedAt.Add(s.opts.ColdStart)) {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "model loading"})
		return
	}
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
		Root    string `json:"root"`
		MaxLen  int    `json:"max_model_len"`
	}
	data := []model{}
	if s.sleeping || !now.Before(s.wokeAt.Add(s.opts.ReadyDelay)) {
		data = append(data, model{ID: s.opts.Model, Object: "model", Created: now.Unix(), OwnedBy: "vllm", Root: s.opts.Model, MaxLen: 131072})
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

// metricsLocked answers GET /metrics in the Prometheus text format, with
// vLLM's metric names.
func (s *Server) metricsLocked(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	label := fmt.Sprintf("{engine=\"0\",model_name=%q}", s.opts.Model)
	fmt.Fprintf(w, "# HELP vllm:num_requests_running Number of requests in model execution batches.\n")
	fmt.Fprintf(w, "# TYPE vllm:num_requests_running gauge\n")
	fmt.Fprintf(w, "vllm:num_requests_running%s %d.0\n", label, s.running)
	fmt.Fprintf(w, "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n")
	fmt.Fprintf(w, "# TYPE vllm:num_requests_waiting gauge\n")
	fmt.Fprintf(w, "vllm:num_requests_waiting%s 0.0\n", label)
}

// repositoryLocked answers Triton's POST /v2/repository/models/{name}/load
// and /unload: unloading the model is this fake's sleep.
func (s *Server) repositoryLocked(w http.ResponseWriter, rest string) {
	name, op, ok := strings.Cut(rest, "/")
	if !ok || name != s.opts.Model && name != lastSegment(s.opts.Model) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "failed to load '" + name + "', no version is available"})
		return
	}
	switch op {
	case "load":
		s.setSleepingLocked(false, 0)
	case "unload":
		s.setSleepingLocked(true, 2)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "Not Found"})
		return
	}
	w.WriteHeader(http.StatusOK)
}

func lastSegment(s string) string {
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(errors.Join(errors.New("inferencefake: marshal"), err)) // programmer error: fixed types
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
