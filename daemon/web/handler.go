package web

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// MaxOverrideBodyBytes bounds the body of POST /api/v1/override; an
// override request is a few hundred bytes.
const MaxOverrideBodyBytes = 64 << 10

// tokenHint tells an operator how to enable overrides (the site config's
// daemon.http keys).
const tokenHint = "overrides are disabled: set http.token_file or http.token_env in the site config to enable them"

// Options configure NewHandler.
type Options struct {
	// Backend is the daemon; required.
	Backend Backend
	// Gatherer is the daemon's own registry, served on /metrics; nil means
	// no /metrics route.
	Gatherer prometheus.Gatherer
	// Token returns the current bearer token for overrides ("" means
	// overrides are disabled). It is called on every override request, so
	// a rotated token file takes effect without a restart. Nil disables
	// overrides.
	Token func() (string, error)
	// Metrics, when set, counts override requests by result.
	Metrics *Metrics
	// Logger gets one line per override request and per refused one; nil
	// means no logging. The caller names it (e.g. Named("http")).
	Logger *zap.Logger
	// Version is shown on the status page.
	Version string
	// Hosts, when not nil, are the Host header names served (see
	// AllowedHosts); a request for another name, unless an IP address, is
	// refused with 421. Nil serves every Host.
	Hosts []string
	// RejectLogInterval is the least time between two log lines about
	// refused requests of one kind; DefaultRejectLogInterval when 0.
	RejectLogInterval time.Duration
}

type handler struct {
	backend Backend
	token   func() (string, error)
	metrics *Metrics
	log     *zap.Logger
	rejects *rejectLogger // refused requests, throttled
	version string
}

// NewHandler returns the HTTP surface of the daemon: probes, metrics, the
// JSON API and the status page. It panics if o.Backend is nil, a
// programming error found at startup.
func NewHandler(o Options) http.Handler {
	if o.Backend == nil {
		panic("web: NewHandler: Options.Backend is nil")
	}
	h := &handler{
		backend: o.Backend,
		token:   o.Token,
		metrics: o.Metrics,
		log:     o.Logger,
		version: o.Version,
	}
	if h.log == nil {
		h.log = zap.NewNop()
	}
	h.rejects = newRejectLogger(h.log, o.RejectLogInterval)

	mux := http.NewServeMux()
	if o.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{
			ErrorLog: zap.NewStdLog(h.log.Named("metrics")),
			// A collector failing must not hide every other series.
			ErrorHandling: promhttp.ContinueOnError,
		}))
	}
	mux.HandleFunc("GET /healthz", h.healthz)
	mux.HandleFunc("GET /readyz", h.readyz)
	mux.HandleFunc("GET /api/v1/state", h.state)
	mux.HandleFunc("GET /api/v1/plan", h.plan)
	mux.HandleFunc("GET /api/v1/devices", h.devices)
	mux.HandleFunc("GET /api/v1/history", h.history)
	mux.HandleFunc("POST /api/v1/override", h.setOverride)
	mux.HandleFunc("DELETE /api/v1/override", h.clearOverrides)
	mux.HandleFunc("GET /{$}", h.page)

	// Patterns without a method are less specific than those above: they
	// only catch the wrong methods, so API clients get JSON errors rather
	// than the mux's plain text.
	mux.HandleFunc("/api/v1/state", methodNotAllowed("GET, HEAD"))
	mux.HandleFunc("/api/v1/plan", methodNotAllowed("GET, HEAD"))
	mux.HandleFunc("/api/v1/devices", methodNotAllowed("GET, HEAD"))
	mux.HandleFunc("/api/v1/history", methodNotAllowed("GET, HEAD"))
	mux.HandleFunc("/api/v1/override", methodNotAllowed("POST, DELETE"))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})
	if o.Hosts != nil {
		return commonHeaders(hostCheck(o.Hosts, h.rejects, mux))
	}
	return commonHeaders(mux)
}

// commonHeaders sets what every response carries. Nothing here is meant
// to be cached: each answer is the state of the moment.
func commonHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

func (h *handler) healthz(w http.ResponseWriter, _ *http.Request) {
	writeText(w, http.StatusOK, "ok")
}

func (h *handler) readyz(w http.ResponseWriter, _ *http.Request) {
	ok, reason := h.backend.Ready()
	if !ok {
		if reason == "" {
			reason = "not ready"
		}
		writeText(w, http.StatusServiceUnavailable, reason)
		return
	}
	if reason != "" {
		// Ready, with something worth knowing (unusable devices).
		writeText(w, http.StatusOK, "ready: "+reason)
		return
	}
	writeText(w, http.StatusOK, "ready")
}

func (h *handler) state(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, h.backend.State())
}

func (h *handler) plan(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, h.backend.Plan())
}

func (h *handler) history(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, h.backend.History())
}

// Page sizes of GET /api/v1/devices: a site may have 100,000 devices.
const (
	DefaultDevicesLimit = 500
	MaxDevicesLimit     = 5000
)

// devices serves GET /api/v1/devices?fleet=NAME[&problem=1][&offset=N][&limit=N].
func (h *handler) devices(w http.ResponseWriter, r *http.Request) {
	q, err := parseDevicesQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	v, err := h.backend.Devices(q)
	switch {
	case errors.Is(err, ErrUnknownFleet):
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown fleet %q", q.Fleet))
		return
	case err != nil:
		h.log.Error("list devices", zap.String("fleet", q.Fleet), zap.Error(err))
		writeError(w, http.StatusInternalServerError, "internal error: see the daemon log")
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func parseDevicesQuery(vals url.Values) (DevicesQuery, error) {
	q := DevicesQuery{Fleet: vals.Get("fleet"), Limit: DefaultDevicesLimit}
	if q.Fleet == "" {
		return q, errors.New("fleet: required, e.g. /api/v1/devices?fleet=asics")
	}
	switch p := vals.Get("problem"); p {
	case "", "0", "false":
	case "1", "true":
		q.ProblemOnly = true
	default:
		return q, fmt.Errorf("problem: want 1 or 0 (got %q)", p)
	}
	num := func(key string, dst *int, lo, hi int) error {
		v := vals.Get(key)
		if v == "" {
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("%s: want a whole number from %d to %d (got %q)", key, lo, hi, v)
		}
		*dst = n
		return nil
	}
	if err := num("offset", &q.Offset, 0, math.MaxInt32); err != nil {
		return q, err
	}
	if err := num("limit", &q.Limit, 1, MaxDevicesLimit); err != nil {
		return q, err
	}
	return q, nil
}

// Results of override requests, as logged and counted.
const (
	resultCreated      = "created"
	resultCleared      = "cleared"
	resultBadRequest   = "bad_request"
	resultUnauthorized = "unauthorized"
	resultDisabled     = "disabled"
	resultError        = "error"
)

func (h *handler) setOverride(w http.ResponseWriter, r *http.Request) {
	log := h.log.With(zap.String("remote", r.RemoteAddr), zap.String("method", r.Method))
	if !h.authorize(w, r, log) {
		return
	}
	var req OverrideRequest
	if status, err := decodeJSON(w, r, &req); err != nil {
		h.metrics.overrideRequest(resultBadRequest)
		h.rejects.log(zapcore.InfoLevel, "override request rejected", zap.String("remote", r.RemoteAddr), zap.String("method", r.Method), zap.Error(err))
		writeError(w, status, err.Error())
		return
	}
	log = log.With(
		zap.String("fleet", req.Fleet),
		zap.String("mode", req.Mode),
		zap.Float64p("site_cap_kw", req.SiteCapKW),
		zap.String("duration", req.Duration),
		zap.String("reason", req.Reason),
	)
	ov, err := h.backend.SetOverride(r.Context(), req)
	if err != nil {
		h.backendError(w, log, "override request rejected", "override request failed", err)
		return
	}
	h.metrics.overrideRequest(resultCreated)
	log.Info("override set", zap.String("id", ov.ID), zap.Time("until", ov.Until))
	writeJSON(w, http.StatusCreated, ov)
}

// clearResponse is the body of a successful DELETE /api/v1/override.
type clearResponse struct {
	Removed int `json:"removed"`
}

func (h *handler) clearOverrides(w http.ResponseWriter, r *http.Request) {
	log := h.log.With(zap.String("remote", r.RemoteAddr), zap.String("method", r.Method))
	if !h.authorize(w, r, log) {
		return
	}
	fleet := r.URL.Query().Get("fleet")
	log = log.With(zap.String("fleet", fleet))
	n, err := h.backend.ClearOverrides(r.Context(), fleet)
	if err != nil {
		h.backendError(w, log, "override removal rejected", "override removal failed", err)
		return
	}
	h.metrics.overrideRequest(resultCleared)
	log.Info("overrides cleared", zap.Int("removed", n))
	writeJSON(w, http.StatusOK, clearResponse{Removed: n})
}

// backendError answers a failed SetOverride or ClearOverrides: a
// *RequestError is the client's mistake and its message is shown; anything
// else is ours, logged in full and reported without internals.
func (h *handler) backendError(w http.ResponseWriter, log *zap.Logger, rejected, failed string, err error) {
	if notLeader(w, err) {
		h.metrics.overrideRequest(resultBadRequest)
		return
	}
	var re *RequestError
	if errors.As(err, &re) {
		h.metrics.overrideRequest(resultBadRequest)
		h.rejects.logTo(log, zapcore.InfoLevel, rejected, zap.Error(err))
		writeError(w, http.StatusBadRequest, re.Msg)
		return
	}
	h.metrics.overrideRequest(resultError)
	log.Error(failed, zap.Error(err))
	writeError(w, http.StatusInternalServerError, "internal error: see the daemon log")
}

// authorize checks the bearer token and answers the request itself when it
// is refused.
func (h *handler) authorize(w http.ResponseWriter, r *http.Request, log *zap.Logger) bool {
	want := ""
	if h.token != nil {
		var err error
		want, err = h.token()
		if err != nil {
			h.metrics.overrideRequest(resultError)
			log.Error("override token unavailable", zap.Error(err))
			writeError(w, http.StatusInternalServerError, "override token unavailable: see the daemon log")
			return false
		}
	}
	if want == "" {
		h.metrics.overrideRequest(resultDisabled)
		h.rejects.log(zapcore.WarnLevel, "override refused", zap.String("reason", "disabled"), zap.String("remote", r.RemoteAddr), zap.String("method", r.Method))
		writeError(w, http.StatusForbidden, tokenHint)
		return false
	}
	got, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		h.metrics.overrideRequest(resultUnauthorized)
		h.rejects.log(zapcore.WarnLevel, "override refused", zap.String("reason", "missing_token"), zap.String("remote", r.RemoteAddr), zap.String("method", r.Method))
		w.Header().Set("WWW-Authenticate", `Bearer realm="switchd"`)
		writeError(w, http.StatusUnauthorized, "missing bearer token: send Authorization: Bearer <token>")
		return false
	}
	if !tokenEqual(got, want) {
		h.metrics.overrideRequest(resultUnauthorized)
		h.rejects.log(zapcore.WarnLevel, "override refused", zap.String("reason", "invalid_token"), zap.String("remote", r.RemoteAddr), zap.String("method", r.Method))
		w.Header().Set("WWW-Authenticate", `Bearer realm="switchd", error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "invalid bearer token")
		return false
	}
	return true
}

// bearer extracts the token of an "Authorization: Bearer <token>" header;
// the scheme is case-insensitive (RFC 7235).
func bearer(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// tokenEqual compares in constant time. Hashing first makes the time
// independent of the lengths too, which subtle.ConstantTimeCompare alone
// would reveal.
func tokenEqual(got, want string) bool {
	g := sha256.Sum256([]byte(got))
	h := sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], h[:]) == 1
}

// decodeJSON reads one JSON object of a bounded size with no unknown
// fields and nothing after it. On error it returns the status to answer.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) (int, error) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxOverrideBodyBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		// A second value (or garbage) after the object is a malformed body.
		if dec.Decode(&struct{}{}) != io.EOF {
			err = errors.New("unexpected data after the JSON object")
		}
	}
	if err == nil {
		return 0, nil
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return http.StatusRequestEntityTooLarge, fmt.Errorf("request body larger than %d bytes", tooLarge.Limit)
	}
	if errors.Is(err, io.EOF) {
		return http.StatusBadRequest, errors.New("empty request body: want a JSON object")
	}
	return http.StatusBadRequest, fmt.Errorf("invalid JSON body: %w", err)
}

// errorResponse is the body of every JSON error.
type errorResponse struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorResponse{Error: msg})
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed (allowed: %s)", r.Method, allow))
	}
}

// writeJSON encodes before writing the header, so an encoding failure (a
// NaN in a view) is a clean 500 rather than a truncated 200.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		_ = json.NewEncoder(&buf).Encode(errorResponse{Error: "encode response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}
