package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/controller"
	"github.com/switchd/switchd/controller/journal"
	"github.com/switchd/switchd/daemon/web"
	"github.com/switchd/switchd/ha"
	"go.uber.org/zap"
)

// daemonHA is the daemon's part in high availability (package ha); its
// node is nil without `ha:` in the site file, and then nothing here acts.
type daemonHA struct {
	node    *ha.Node
	leader  prometheus.Gauge
	term    prometheus.Gauge
	fenced  *prometheus.CounterVec
	mu      sync.Mutex
	noted   ha.Status // last status journalled
	started bool
	// adopted is the term for which this instance, as leader, has taken
	// over the overrides saved in etcd; it commands only once it has.
	adopted int64
	saveMu  sync.Mutex // orders haSaveOverrides
}

// overridesKey is where the leader keeps the overrides in etcd.
const overridesKey = "overrides"

// startHA joins the site's leader election, if the site file has `ha:`.
// Until elected the instance is a follower: it reads its fleets and plans
// but commands nothing. It returns the function that leaves the election.
func (d *daemon) startHA() (func(), error) {
	c := d.site.HA
	if c == nil {
		return func() {}, nil
	}
	h := &d.ha
	h.leader = prometheus.NewGauge(prometheus.GaugeOpts{Name: "switchd_ha_leader", Help: "1 while this instance is the high-availability leader (it commands devices), 0 while a follower."})
	h.term = prometheus.NewGauge(prometheus.GaugeOpts{Name: "switchd_ha_term", Help: "The current leader's term (its etcd election revision) as this instance last saw it."})
	h.fenced = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchd_ha_fenced_total", Help: "Fence checks failed on an instance that thought it led: op apply is a command batch not sent, op poll a fleet poll done watch-only (no drifted device commanded back)."}, []string{"op"})
	for _, col := range []prometheus.Collector{h.leader, h.term, h.fenced} {
		if err := d.o.Registry.Register(col); err != nil {
			return nil, fmt.Errorf("ha metrics: %w", err)
		}
	}
	for _, in := range d.drivers {
		if sb, ok := in.Driver.(standbyer); ok {
			sb.SetStandby(true) // until elected
		}
	}
	node, err := ha.Start(ha.Options{Config: c, Logger: d.log.Named("ha"), OnChange: d.haChanged})
	if err != nil {
		return nil, err
	}
	h.node = node
	d.log.Info("high availability: joined the election as a follower", zap.String("ha", c.String()))
	return node.Close, nil
}

// haChanged is called by the node on every change of its view: metrics,
// log, and a journal entry when the role or term changed.
func (d *daemon) haChanged(st ha.Status) {
	h := &d.ha
	if st.Leader {
		h.leader.Set(1)
	} else {
		h.leader.Set(0)
	}
	h.term.Set(float64(st.Term))
	h.mu.Lock()
	prev := h.noted
	changed := !h.started || prev.Leader != st.Leader || prev.Term != st.Term
	h.noted, h.started = st, true
	h.mu.Unlock()
	if !changed {
		return
	}
	d.log.Info("high availability: role", zap.String("role", st.Role()), zap.Int64("term", st.Term), zap.String("leader", st.Name), zap.String("leader_http", st.HTTP))
	reason := fmt.Sprintf("%s; leader %s, term %d", st.Role(), st.Name, st.Term)
	if err := d.appendJournal(journal.Entry{Time: d.clock.Now(), Kind: journal.KindHA, Reason: reason}); err != nil {
		d.log.Warn("high availability: cannot journal the role change", zap.Error(err))
	}
	d.poke()
}

// haStandby is the controller's Standby: true unless this instance leads
// and has taken over the overrides in force. A new leader's first tick
// takes them over (they apply from the next tick, asked for at once), so a
// failover never drops an operator's override.
func (d *daemon) haStandby() bool {
	h := &d.ha
	st := h.node.Status()
	if !st.Leader {
		return true
	}
	h.mu.Lock()
	done := h.adopted == st.Term
	h.mu.Unlock()
	if done {
		return false
	}
	if err := d.adoptOverrides(st.Term); err != nil {
		d.log.Warn("high availability: cannot read the overrides in force from etcd; not commanding yet", zap.Error(err))
		return true
	}
	h.mu.Lock()
	h.adopted = st.Term
	h.mu.Unlock()
	d.poke()
	return true
}

// adoptOverrides replaces this instance's overrides with those the
// previous leaders saved in etcd (those still in force). Called from Tick,
// outside d.mu.
func (d *daemon) adoptOverrides(term int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), d.site.HA.LeaseTTL)
	defer cancel()
	data, err := d.ha.node.LoadShared(ctx, overridesKey)
	if err != nil {
		return err
	}
	var ovs []controller.Override
	if data != nil {
		if err := json.Unmarshal(data, &ovs); err != nil {
			return fmt.Errorf("overrides in etcd: %w", err)
		}
	}
	now := d.clock.Now()
	kept := ovs[:0]
	for _, o := range ovs {
		if o.Active(now) {
			kept = append(kept, o)
		}
	}
	d.mu.Lock()
	d.overrides = append([]controller.Override(nil), kept...)
	d.mu.Unlock()
	d.log.Info("high availability: overrides in force taken over", zap.Int64("term", term), zap.Int("overrides", len(kept)))
	_ = d.appendJournal(journal.Entry{Time: now, Kind: journal.KindHA, Reason: fmt.Sprintf("leader; took over %d override(s) in force", len(kept))})
	return nil
}

// haSaveOverrides stores the overrides in etcd for a successor (leader
// only, fenced like commands); a failure is logged: they stay in force
// here but a failover would lose them.
func (d *daemon) haSaveOverrides(ctx context.Context) {
	h := &d.ha
	if h.node == nil {
		return
	}
	h.saveMu.Lock()
	defer h.saveMu.Unlock()
	d.mu.Lock()
	data, err := json.Marshal(d.overrides)
	d.mu.Unlock()
	if err == nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.site.HA.LeaseTTL)
		err = h.node.SaveShared(ctx, overridesKey, data)
		cancel()
	}
	if err != nil {
		d.log.Warn("high availability: overrides not saved in etcd: a failover now would drop them", zap.Error(err))
	}
}

// standbyFunc is the controller's Standby option: nil without HA.
func (d *daemon) standbyFunc() func() bool {
	if d.ha.node == nil {
		return nil
	}
	return d.haStandby
}

// haTerm is the term journal entries are stamped with: 0 without HA.
func (d *daemon) haTerm() int64 {
	if d.ha.node == nil {
		return 0
	}
	return d.ha.node.ActingTerm()
}

// stampTerm sets the HA term on entries that have none.
func (d *daemon) stampTerm(entries []journal.Entry) {
	if d.ha.node == nil {
		return
	}
	t := d.haTerm()
	for i := range entries {
		if entries[i].Term == 0 {
			entries[i].Term = t
		}
	}
}

// haView is the HA part of /api/v1/state; nil without HA.
func (d *daemon) haView() *web.HAView {
	if d.ha.node == nil {
		return nil
	}
	st := d.ha.node.Status()
	return &web.HAView{Instance: st.Self, Role: st.Role(), Term: st.Term, Leader: st.Name, LeaderHTTP: st.HTTP}
}

// haRefuse returns a *web.NotLeaderError on a follower (overrides are the
// leader's), nil on the leader or without HA.
func (d *daemon) haRefuse() error {
	if d.ha.node == nil {
		return nil
	}
	st := d.ha.node.Status()
	if st.Leader {
		return nil
	}
	return &web.NotLeaderError{Leader: st.Name, LeaderHTTP: st.HTTP}
}

// haReady is what /readyz adds: the role and term; "" without HA.
func (d *daemon) haReady() string {
	if d.ha.node == nil {
		return ""
	}
	st := d.ha.node.Status()
	return fmt.Sprintf("%s (term %d)", st.Role(), st.Term)
}

// fenced puts the HA fence in front of a fleet's driver: every command
// batch is first recorded in etcd in a transaction that succeeds only
// while this instance still holds its term, and is sent only then.
type fenced struct {
	switchd.Driver
	raw   switchd.Driver // the driver itself, for its SetStandby
	fleet string
	d     *daemon
}

// standbyer is the optional capability of drivers whose State may command
// devices (the device pool re-commands drifted devices): a follower's must
// only watch.
type standbyer interface{ SetStandby(on bool) }

// State implements switchd.Driver. A driver that may command devices while
// polling them does so only on the leader, right after a check that it
// still holds its term; otherwise it only watches.
func (f *fenced) State(ctx context.Context) (switchd.FleetState, error) {
	if sb, ok := f.raw.(standbyer); ok {
		active := false
		if f.d.ha.node.Status().Leader {
			cctx, cancel := context.WithTimeout(ctx, f.d.site.HA.LeaseTTL)
			term, err := f.d.ha.node.Check(cctx)
			cancel()
			active = err == nil
			if active {
				ctx = switchd.WithTerm(ctx, term)
			}
			if errors.Is(err, ha.ErrFenced) {
				f.d.ha.fenced.WithLabelValues("poll").Inc()
			}
		}
		sb.SetStandby(!active)
	}
	return f.Driver.State(ctx)
}

// Apply implements switchd.Driver.
func (f *fenced) Apply(ctx context.Context, cmds []switchd.Command) error {
	ctx2, cancel := context.WithTimeout(ctx, f.d.site.HA.LeaseTTL)
	defer cancel()
	term, err := f.d.ha.node.Fence(ctx2, ha.CommandRecord{Time: f.d.clock.Now(), Fleet: f.fleet, Commands: cmds})
	if err != nil {
		if errors.Is(err, ha.ErrFenced) || errors.Is(err, ha.ErrNotLeader) {
			f.d.ha.fenced.WithLabelValues("apply").Inc()
		}
		return err
	}
	return f.Driver.Apply(switchd.WithTerm(ctx, term), cmds)
}

// haDrivers wraps the controller's drivers in the fence, with HA.
func (d *daemon) haDrivers(drv []switchd.Driver) []switchd.Driver {
	if d.ha.node == nil {
		return drv
	}
	out := make([]switchd.Driver, len(drv))
	for i, dr := range drv {
		out[i] = &fenced{Driver: dr, raw: d.drivers[i].Driver, fleet: d.site.Fleets[i].Spec.Name, d: d}
	}
	return out
}
