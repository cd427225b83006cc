// Package ha is switchd's high availability: two or three instances of one
// site elect a leader through etcd, and only the leader commands devices.
//
// The term is the leader key's create revision in etcd: etcd revisions only
// grow, so a later leader always has a larger term. Fencing: before each
// command batch the leader runs one etcd transaction that compares the
// leader key's create revision with its term and, only if it still holds,
// records the batch under <dir(prefix)>/commands/<fleet> (Fence). The
// leader key is bound to the leader's lease, so once a paused or cut-off
// leader's lease has expired the compare fails and the batch is never sent.
//
// The package imports etcd's client; the controller core never sees it.
package ha

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/switchd/switchd/config"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

// Errors returned by Fence, checked with errors.Is.
var (
	// ErrNotLeader means this instance does not hold the leadership.
	ErrNotLeader = errors.New("not the leader")
	// ErrFenced means the term this instance held has ended in etcd (its
	// lease expired or a newer leader was elected): nothing was sent.
	ErrFenced = errors.New("fenced: the term has ended")
)

// Status is an instance's view of the election.
type Status struct {
	Leader bool   // this instance holds the leadership
	Term   int64  // the current leader's term as last seen; 0 if none yet
	Name   string // the current leader's instance name, if known
	HTTP   string // the current leader's advertised HTTP address, if known
	Self   string // this instance's name
}

// Role is "leader" or "follower".
func (s Status) Role() string {
	if s.Leader {
		return "leader"
	}
	return "follower"
}

// candidate is what an instance publishes as its election value.
type candidate struct {
	Name string `json:"name"`
	HTTP string `json:"http,omitempty"`
}

// Options configure a Node.
type Options struct {
	Config *config.HA
	Logger *zap.Logger
	// OnChange, when set, is called (from the node's goroutine) after each
	// change of Status.
	OnChange func(Status)
}

// Node is one instance's membership in the election.
type Node struct {
	o      Options
	cli    *clientv3.Client
	cmdDir string
	dir    string // dir of the prefix: shared state lives under it
	ttl    int

	report sync.Mutex // serialises set, so OnChange sees changes in order
	mu     sync.Mutex
	st     Status
	key    string // our leader key while leader
	myTerm int64  // the term we were elected with, while leader
	cancel context.CancelFunc
	done   chan struct{}
}

// Start connects to etcd and campaigns in the background until Close.
// Connecting is lazy: an unreachable etcd leaves the instance a follower
// (it never commands) and is retried.
func Start(o Options) (*Node, error) {
	c := o.Config
	cfg := clientv3.Config{
		Endpoints:   c.Endpoints,
		DialTimeout: c.LeaseTTL,
		Username:    c.Username,
		Password:    c.Password,
		Logger:      o.Logger.Named("etcd").WithOptions(zap.IncreaseLevel(zap.WarnLevel)),
	}
	if c.CAFile != "" || c.CertFile != "" {
		t, err := tlsConfig(c)
		if err != nil {
			return nil, fmt.Errorf("ha: %w", err)
		}
		cfg.TLS = t
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("ha: etcd client: %w", err)
	}
	dir := strings.TrimSuffix(path.Dir(c.Prefix), "/")
	n := &Node{o: o, cli: cli, cmdDir: dir + "/commands/", dir: dir, ttl: int(c.LeaseTTL / time.Second), done: make(chan struct{})}
	n.st.Self = c.Name
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go n.run(ctx)
	return n, nil
}

func tlsConfig(c *config.HA) (*tls.Config, error) {
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, err
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate", c.CAFile)
		}
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, err
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

// ActingTerm is the term this instance acts under: the one it was elected
// with while leader, else the newest leader's term it has seen.
func (n *Node) ActingTerm() int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.st.Leader {
		return n.myTerm
	}
	return n.st.Term
}

// Status returns the instance's current view.
func (n *Node) Status() Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.st
}

// Close resigns (if leader, so a follower takes over at once) and
// disconnects.
func (n *Node) Close() {
	n.cancel()
	<-n.done
	_ = n.cli.Close()
}

// run campaigns until ctx is done: one etcd session (lease) at a time.
func (n *Node) run(ctx context.Context) {
	defer close(n.done)
	log := n.o.Logger
	for ctx.Err() == nil {
		if err := n.session(ctx); err != nil && ctx.Err() == nil {
			log.Warn("ha: etcd session ended; retrying", zap.Error(err))
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// session takes a lease, observes the leader and campaigns; it returns
// when the lease is lost (or ctx is done), leadership with it.
func (n *Node) session(ctx context.Context) error {
	sess, err := concurrency.NewSession(n.cli, concurrency.WithTTL(n.ttl), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("lease: %w", err)
	}
	defer sess.Close() // revokes the lease: resigns at once
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-sess.Done():
			stop()
		case <-sctx.Done():
		}
	}()
	el := concurrency.NewElection(sess, n.o.Config.Prefix)
	go n.observe(sctx, el)
	val, _ := json.Marshal(candidate{Name: n.o.Config.Name, HTTP: n.o.Config.Advertise})
	if err := el.Campaign(sctx, string(val)); err != nil {
		return fmt.Errorf("campaign: %w", err)
	}
	n.set(func(s *Status) {
		n.key, n.myTerm = el.Key(), el.Rev()
		s.Leader, s.Term, s.Name, s.HTTP = true, el.Rev(), n.o.Config.Name, n.o.Config.Advertise
	})
	n.o.Logger.Info("ha: elected leader", zap.Int64("term", el.Rev()), zap.String("instance", n.o.Config.Name))
	<-sctx.Done()
	n.set(func(s *Status) { s.Leader = false })
	if ctx.Err() != nil {
		return nil
	}
	return errors.New("lease lost: leadership given up")
}

// observe follows the current leader (name, address, term).
func (n *Node) observe(ctx context.Context, el *concurrency.Election) {
	for resp := range el.Observe(ctx) {
		if len(resp.Kvs) == 0 {
			continue
		}
		kv := resp.Kvs[0]
		var c candidate
		_ = json.Unmarshal(kv.Value, &c)
		n.set(func(s *Status) {
			if kv.CreateRevision >= s.Term {
				s.Term, s.Name, s.HTTP = kv.CreateRevision, c.Name, c.HTTP
			}
			if s.Leader && s.Term != n.myTerm {
				s.Leader = false // deposed: a newer leader was elected
			}
		})
	}
}

// set changes the status under the lock and reports a change. Changes
// are reported in order: one at a time.
func (n *Node) set(fn func(*Status)) {
	n.report.Lock()
	defer n.report.Unlock()
	n.mu.Lock()
	old := n.st
	fn(&n.st)
	if !n.st.Leader {
		n.key, n.myTerm = "", 0
	}
	st := n.st
	n.mu.Unlock()
	if st != old && n.o.OnChange != nil {
		n.o.OnChange(st)
	}
}

// Check is Fence without a record: it checks in etcd that this instance
// still holds its term, and returns it. The daemon calls it before a leader's fleet poll,
// which may command devices that drifted.
func (n *Node) Check(ctx context.Context) (int64, error) {
	n.mu.Lock()
	st, key, term := n.st, n.key, n.myTerm
	n.mu.Unlock()
	if !st.Leader || key == "" {
		return 0, ErrNotLeader
	}
	resp, err := n.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", term)).Commit()
	if err != nil {
		return term, fmt.Errorf("ha: check of term %d: etcd: %w", term, err)
	}
	if !resp.Succeeded {
		n.deposed(term)
		return term, fmt.Errorf("ha: term %d: %w", term, ErrFenced)
	}
	return term, nil
}

// deposed notes that term has ended in etcd.
func (n *Node) deposed(term int64) {
	n.set(func(s *Status) {
		if n.myTerm == term {
			s.Leader = false
		}
	})
}

// CommandRecord is what Fence stores in etcd for each command batch.
type CommandRecord struct {
	Term     int64     `json:"term"`
	Instance string    `json:"instance"`
	Time     time.Time `json:"time"`
	Fleet    string    `json:"fleet"`
	Commands any       `json:"commands"`
}

// Fence checks in one etcd transaction that this instance still holds the
// term it was elected with and, if so, records rec (its Term and Instance
// are filled in) as the fleet's latest command batch. It returns the term;
// ErrNotLeader or ErrFenced (wrapped) when the batch must not be sent.
func (n *Node) Fence(ctx context.Context, rec CommandRecord) (int64, error) {
	n.mu.Lock()
	st, key, term := n.st, n.key, n.myTerm
	n.mu.Unlock()
	if !st.Leader || key == "" {
		return 0, ErrNotLeader
	}
	rec.Term, rec.Instance = term, st.Self
	val, err := json.Marshal(rec)
	if err != nil {
		return 0, err
	}
	resp, err := n.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", term)).
		Then(clientv3.OpPut(n.cmdDir+rec.Fleet, string(val))).
		Commit()
	if err != nil {
		return term, fmt.Errorf("ha: fence of term %d: etcd: %w", term, err)
	}
	if !resp.Succeeded {
		n.deposed(term)
		return term, fmt.Errorf("ha: term %d: %w", term, ErrFenced)
	}
	return term, nil
}

// SaveShared stores data under <dir of prefix>/<name> in the same kind of
// transaction as Fence: only while this instance holds its term. The leader
// keeps there what a successor must take over (the operator overrides).
func (n *Node) SaveShared(ctx context.Context, name string, data []byte) error {
	n.mu.Lock()
	st, key, term := n.st, n.key, n.myTerm
	n.mu.Unlock()
	if !st.Leader || key == "" {
		return ErrNotLeader
	}
	resp, err := n.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", term)).
		Then(clientv3.OpPut(n.dir+"/"+name, string(data))).
		Commit()
	if err != nil {
		return fmt.Errorf("ha: save %s: etcd: %w", name, err)
	}
	if !resp.Succeeded {
		n.deposed(term)
		return fmt.Errorf("ha: save %s: term %d: %w", name, term, ErrFenced)
	}
	return nil
}

// LoadShared reads what SaveShared stored under name; nil when nothing.
func (n *Node) LoadShared(ctx context.Context, name string) ([]byte, error) {
	resp, err := n.cli.Get(ctx, n.dir+"/"+name)
	if err != nil {
		return nil, fmt.Errorf("ha: load %s: etcd: %w", name, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return resp.Kvs[0].Value, nil
}
