package httpexec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/switchd/switchd"
)

// maxBody bounds what is read of one HTTP reply: readiness and control
// replies are small, and a broken server must not exhaust memory.
const maxBody = 1 << 20

// maxOutput bounds what is kept of an exec hook's stdout and stderr each.
const maxOutput = 4 << 10

// BaseURL returns the base URL of a device listed as addr ("host",
// "host:port" or a full "http(s)://host:port" URL) and its host:port. A
// missing port becomes port; scheme is "http" or "https".
func BaseURL(addr, scheme string, port int) (base, hostport string, err error) {
	if strings.Contains(addr, "://") {
		u, err := url.Parse(addr)
		if err != nil {
			return "", "", fmt.Errorf("address %q: %w", addr, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return "", "", fmt.Errorf("address %q: scheme must be http or https", addr)
		}
		if u.Host == "" {
			return "", "", fmt.Errorf("address %q: no host", addr)
		}
		scheme, addr = u.Scheme, u.Host
	}
	hostport = addr
	if _, _, err := net.SplitHostPort(addr); err != nil {
		hostport = net.JoinHostPort(strings.Trim(addr, "[]"), strconv.Itoa(port))
	}
	if hostport == "" || strings.HasPrefix(hostport, ":") {
		return "", "", fmt.Errorf("address %q: no host", addr)
	}
	return scheme + "://" + hostport, hostport, nil
}

// NewClient returns the HTTP client for one device: no proxy from the
// environment (devices sit on the site's LAN), a few idle connections
// kept, and no timeout of its own (every call carries a deadline).
func NewClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext:           (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
		// A readiness or control endpoint that redirects is misconfigured;
		// following it could send the token elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Reply is one HTTP answer.
type Reply struct {
	Status int
	Body   []byte
}

// TermHeader carries the high-availability leader's term on every call
// made under switchd.WithTerm.
const TermHeader = "Switchd-Term"

// Do makes one HTTP call. A call that gets no answer (refused, timed out,
// reset) is an unreachable error; any answer is returned with a nil error,
// whatever its status (see StatusError). A non-empty token is sent as a
// bearer token.
func Do(ctx context.Context, c *http.Client, method, rawURL, token, contentType string, body []byte) (Reply, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, rd)
	if err != nil {
		return Reply{}, switchd.Permanent(fmt.Errorf("%s %s: %w", method, rawURL, err))
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil && contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if term, ok := switchd.TermFrom(ctx); ok {
		// High availability: the leader's term, for a server that refuses
		// a deposed leader's older one.
		req.Header.Set(TermHeader, strconv.FormatInt(term, 10))
	}
	resp, err := c.Do(req)
	if err != nil {
		return Reply{}, switchd.Unreachable(fmt.Errorf("%s %s: %w", method, rawURL, err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return Reply{}, switchd.Retriable(fmt.Errorf("%s %s: reading reply: %w", method, rawURL, err))
	}
	return Reply{Status: resp.StatusCode, Body: b}, nil
}

// Refused reports whether err is a refused connection: the host answered
// but nothing listens on the port (a stopped server), as opposed to a
// timeout or no route (the host is down).
func Refused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// StatusError classifies a non-2xx reply: 401 and 403 are refused
// credentials, 5xx and 429 are worth retrying, any other status is
// permanent (a wrong path, a feature the server was not started with).
// It returns nil for 2xx.
func StatusError(what string, r Reply) error {
	if r.Status >= 200 && r.Status < 300 {
		return nil
	}
	err := fmt.Errorf("%s: status %d%s", what, r.Status, snippet(r.Body))
	switch {
	case r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden:
		return switchd.AuthError(err)
	case r.Status >= 500 || r.Status == http.StatusTooManyRequests:
		return switchd.Retriable(err)
	}
	return switchd.Permanent(err)
}

// snippet returns the start of a reply body for an error message.
func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return ""
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return ": " + strings.Join(strings.Fields(s), " ")
}

// Result is what an exec hook printed and how it exited.
type Result struct {
	Stdout, Stderr string
	Exit           int
}

// ExitError is an exec hook that ran and exited non-zero. It is
// retriable: a service manager that fails once may succeed next time.
type ExitError struct {
	Argv   []string
	Result Result
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("%s: exit status %d%s", strings.Join(e.Argv, " "), e.Result.Exit, e.Result.output())
}

// output is the captured output for an error message.
func (r Result) output() string {
	var parts []string
	if s := strings.TrimSpace(r.Stdout); s != "" {
		parts = append(parts, "stdout: "+s)
	}
	if s := strings.TrimSpace(r.Stderr); s != "" {
		parts = append(parts, "stderr: "+s)
	}
	if len(parts) == 0 {
		return " (no output)"
	}
	return ": " + strings.Join(parts, "; ")
}

// Expand substitutes the placeholders {addr} (host:port), {host} and
// {port} in every argument of argv.
func Expand(argv []string, hostport string) []string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	r := strings.NewReplacer("{addr}", hostport, "{host}", host, "{port}", port)
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = r.Replace(a)
	}
	return out
}

// Run runs an exec hook: argv directly (never through a shell), bounded by
// ctx and by timeout when positive, with stdout and stderr captured (the
// first 4 KiB of each). A command that cannot be started is a permanent
// error; one that times out is retriable; one that exits non-zero is an
// *ExitError (retriable) carrying its output. The Result is filled in all
// cases where the command ran.
func Run(ctx context.Context, argv []string, timeout time.Duration) (Result, error) {
	if len(argv) == 0 {
		return Result{}, switchd.Permanent(errors.New("exec: empty command"))
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var stdout, stderr capBuffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A child that keeps the pipes open (a daemon forked by the hook) must
	// not keep us waiting past the kill.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	// ExitCode is -1 when the command did not start or was killed.
	res := Result{Stdout: stdout.String(), Stderr: stderr.String(), Exit: cmd.ProcessState.ExitCode()}
	name := strings.Join(argv, " ")
	switch {
	case err == nil:
		return res, nil
	case ctx.Err() != nil:
		return res, switchd.Retriable(fmt.Errorf("%s: %w%s", name, ctx.Err(), res.output()))
	case cmd.ProcessState == nil:
		return res, switchd.Permanent(fmt.Errorf("exec %s: %w", name, err))
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return res, switchd.Retriable(&ExitError{Argv: argv, Result: res})
	}
	return res, switchd.Retriable(fmt.Errorf("%s: %w%s", name, err, res.output()))
}

// capBuffer keeps the first maxOutput bytes written to it and drops the
// rest, so that a chatty hook neither blocks nor grows memory.
type capBuffer struct {
	b         bytes.Buffer
	truncated bool
}

func (c *capBuffer) Write(p []byte) (int, error) {
	room := maxOutput - c.b.Len()
	if len(p) > room {
		c.truncated = true
	}
	if room > 0 {
		c.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (c *capBuffer) String() string {
	if c.truncated {
		return c.b.String() + "…"
	}
	return c.b.String()
}
