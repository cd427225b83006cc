package ha

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/internal/etcdtest"
	"github.com/switchd/switchd/internal/mqtttest"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap/zaptest"
)

func node(t *testing.T, url, name string) *Node {
	n, err := Start(Options{Config: &config.HA{Endpoints: []string{url}, Name: name, Advertise: name + ":8080", LeaseTTL: 2 * time.Second, Prefix: "/switchd/t/leader"}, Logger: zaptest.NewLogger(t)})
	require.NoError(t, err)
	return n
}

// TestElectionAndFence runs two nodes against a real etcd (Debian's 3.4
// server with the v3.7 client): one leads, the other follows and knows the
// leader; the leader's fence passes; once the leader resigns the other
// leads with a larger term, and a fence with the old term (the old key)
// fails and sends nothing.
func TestElectionAndFence(t *testing.T) {
	srv := etcdtest.Start(t)
	a := node(t, srv.URL, "a")
	require.Eventually(t, func() bool { return a.Status().Leader }, 10*time.Second, 20*time.Millisecond)
	b := node(t, srv.URL, "b")
	t.Cleanup(b.Close)
	require.Eventually(t, func() bool { s := b.Status(); return s.Name == "a" && s.HTTP == "a:8080" }, 10*time.Second, 20*time.Millisecond)
	require.False(t, b.Status().Leader)
	first := a.Status().Term
	require.Equal(t, first, b.Status().Term)

	ctx := context.Background()
	term, err := a.Fence(ctx, CommandRecord{Fleet: "luxos", Commands: "x"})
	require.NoError(t, err)
	require.Equal(t, first, term)
	_, err = b.Fence(ctx, CommandRecord{Fleet: "luxos"})
	require.ErrorIs(t, err, ErrNotLeader)

	// Keep a's key and term, as a paused leader would, then let it go.
	a.mu.Lock()
	oldKey, oldSt, oldTerm := a.key, a.st, a.myTerm
	a.mu.Unlock()
	a.Close()
	require.Eventually(t, func() bool { return b.Status().Leader }, 10*time.Second, 20*time.Millisecond)
	require.Greater(t, b.Status().Term, first, "terms only grow")

	a.mu.Lock()
	a.key, a.st, a.myTerm = oldKey, oldSt, oldTerm
	a.mu.Unlock()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.URL}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cli.Close() })
	a.cli = cli
	_, err = a.Fence(ctx, CommandRecord{Fleet: "luxos", Commands: "stale"})
	require.True(t, errors.Is(err, ErrFenced), "%v", err)
	got, err := cli.Get(ctx, "/switchd/t/commands/luxos")
	require.NoError(t, err)
	require.Len(t, got.Kvs, 1)
	require.Contains(t, string(got.Kvs[0].Value), `"commands":"x"`, "the stale batch was not recorded")
}

// TestEtcdDownStaysFollower: with no etcd reachable the instance starts
// (connecting is lazy), stays a follower, sends nothing, and closes at once.
func TestEtcdDownStaysFollower(t *testing.T) {
	port := mqtttest.FreePort(t) // nothing listens there
	n := node(t, "http://127.0.0.1:"+strconv.Itoa(port), "a")
	time.Sleep(time.Second)
	require.False(t, n.Status().Leader)
	_, err := n.Fence(context.Background(), CommandRecord{Fleet: "luxos"})
	require.ErrorIs(t, err, ErrNotLeader)
	start := time.Now()
	n.Close()
	require.Less(t, time.Since(start), 3*time.Second)
}
