package httpexec

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
)

// TestTermHeader: under high availability every call carries the leader's
// term, and a server that keeps the newest term it has seen (as this fake
// does) refuses a deposed leader's older one; without HA no header is sent.
func TestTermHeader(t *testing.T) {
	var mu sync.Mutex
	var newest int64
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		h := r.Header.Get(TermHeader)
		seen = append(seen, h)
		if h != "" {
			term, err := strconv.ParseInt(h, 10, 64)
			if err != nil || term < newest {
				w.WriteHeader(http.StatusConflict)
				return
			}
			newest = term
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	ctx := context.Background()
	call := func(ctx context.Context) int {
		r, err := Do(ctx, srv.Client(), http.MethodPost, srv.URL+"/off", "", "", nil)
		require.NoError(t, err)
		return r.Status
	}
	require.Equal(t, http.StatusOK, call(ctx))
	require.Equal(t, http.StatusOK, call(switchd.WithTerm(ctx, 12)))
	require.Equal(t, http.StatusConflict, call(switchd.WithTerm(ctx, 9)), "the deposed leader's call is refused")
	require.Equal(t, http.StatusOK, call(switchd.WithTerm(ctx, 13)))
	require.Equal(t, []string{"", "12", "9", "13"}, seen)
}
