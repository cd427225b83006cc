package inferencefake

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// get calls the fake and returns status and body ("" and -1 when there is
// no answer).
func get(t *testing.T, method, url, token string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1, err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestServer(t *testing.T) {
	clk := &clock{t: time.Unix(1_750_000_000, 0)}
	s := New(Options{Now: clk.Now, ReadyDelay: 10 * time.Second, ColdStart: 30 * time.Second, Token: "k", Health: HealthTGI})
	require.NoError(t, s.Start("127.0.0.1:0"))
	defer s.Close()
	u := "http://" + s.Addr()

	code, body := get(t, "GET", u+"/v1/models", "")
	require.Equal(t, 401, code)
	require.JSONEq(t, `{"error":"Unauthorized"}`, body)
	code, body = get(t, "GET", u+"/v1/models", "k")
	require.Equal(t, 200, code)
	require.Contains(t, body, `"id":"meta-llama/Llama-3.1-8B-Instruct"`)
	code, _ = get(t, "GET", u+"/is_sleeping", "")
	require.Equal(t, 200, code, "vLLM guards only /v1 routes")

	code, _ = get(t, "POST", u+"/sleep?level=3", "")
	require.Equal(t, 400, code)
	code, _ = get(t, "POST", u+"/sleep?level=2", "")
	require.Equal(t, 200, code)
	sl, lvl := s.Sleeping()
	require.True(t, sl)
	require.Equal(t, 2, lvl)
	_, body = get(t, "GET", u+"/is_sleeping", "")
	require.JSONEq(t, `{"is_sleeping":true}`, body)
	code, _ = get(t, "GET", u+"/health", "")
	require.Equal(t, 503, code, "TGI health fails while asleep")
	code, body = get(t, "GET", u+"/v1/models", "k")
	require.Equal(t, 200, code)
	require.Contains(t, body, "meta-llama", "vLLM lists the model while asleep")

	get(t, "POST", u+"/wake_up", "")
	require.False(t, s.Ready(), "warming up")
	_, body = get(t, "GET", u+"/v1/models", "k")
	require.JSONEq(t, `{"object":"list","data":[]}`, body)
	code, _ = get(t, "GET", u+"/v2/health/ready", "")
	require.Equal(t, 503, code)
	clk.advance(10 * time.Second)
	code, _ = get(t, "GET", u+"/v2/health/ready", "")
	require.Equal(t, 200, code)

	s.SetRunning(4)
	_, body = get(t, "GET", u+"/metrics", "")
	require.Contains(t, body, "vllm:num_requests_running{engine=\"0\",model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} 4.0\n")

	// Faults: refused and back on the same address, hang, 500, garbage.
	require.NoError(t, s.SetFault(FaultRefuse))
	code, body = get(t, "GET", u+"/health", "")
	require.Equal(t, -1, code)
	require.Contains(t, body, "connection refused")
	require.NoError(t, s.SetFault(FaultHang))
	code, body = get(t, "GET", u+"/health", "")
	require.Equal(t, -1, code)
	require.Contains(t, body, "deadline exceeded")
	require.NoError(t, s.SetFault(Fault500))
	code, _ = get(t, "GET", u+"/health", "")
	require.Equal(t, 500, code)
	require.NoError(t, s.SetFault(FaultGarbage))
	code, body = get(t, "GET", u+"/is_sleeping", "")
	require.Equal(t, 200, code)
	require.True(t, strings.HasPrefix(body, `{"is_sleeping": tru`))
	require.NoError(t, s.SetFault(FaultNone))

	// The engine stopped and started: refused, then a cold start.
	require.NoError(t, s.StopEngine())
	code, _ = get(t, "GET", u+"/health", "")
	require.Equal(t, -1, code)
	require.NoError(t, s.StartEngine())
	code, _ = get(t, "GET", u+"/v1/models", "k")
	require.Equal(t, 503, code)
	require.Equal(t, 1, s.Calls("POST /wake_up"))
}

// TestCloseReleasesHang: Close does not wait for a hung client.
func TestCloseReleasesHang(t *testing.T) {
	s := New(Options{})
	require.NoError(t, s.Start("127.0.0.1:0"))
	require.NoError(t, s.SetFault(FaultHang))
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Get("http://" + s.Addr() + "/health")
		if err == nil {
			resp.Body.Close()
		}
	}()
	require.Eventually(t, func() bool { return s.Calls("GET /health") == 1 }, 5*time.Second, 5*time.Millisecond)
	s.Close()
	<-done
}
