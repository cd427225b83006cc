package web

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestHAViews: the status page shows the instance's role and term, and an
// override sent to a follower gets 421 naming the leader, with a Location.
func TestHAViews(t *testing.T) {
	ts := newTestServer(t, Options{Token: staticToken(testToken)})
	ts.backend.state.HA = &HAView{Instance: "b", Role: "follower", Term: 12, Leader: "a", LeaderHTTP: "10.0.0.11:8080"}
	r := do(t, "GET", ts.url+"/", "", "")
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, r.body, `High availability: instance <code>b</code> is <span class="badge warn">follower</span>, term 12 · leader a (<code>10.0.0.11:8080</code>)`)

	ts.backend.setErr = &NotLeaderError{Leader: "a", LeaderHTTP: "10.0.0.11:8080"}
	r = do(t, "POST", ts.url+"/api/v1/override", "Bearer "+testToken, `{"fleet":"asics","mode":"off","duration":"1h"}`)
	require.Equal(t, http.StatusMisdirectedRequest, r.status)
	require.Contains(t, r.body, "send overrides to the leader a at http://10.0.0.11:8080")

	ts.backend.state.HA = nil
	r = do(t, "GET", ts.url+"/", "", "")
	require.NotContains(t, r.body, "High availability")
}
