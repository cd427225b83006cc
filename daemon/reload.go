package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/controller"
	"github.com/switchd/switchd/controller/journal"
	"github.com/switchd/switchd/controller/mqttio"
	"github.com/switchd/switchd/daemon/web"
	"github.com/switchd/switchd/trace"
	"go.uber.org/zap"
)

// reloadDebounce lets an editor finish writing (several events per save)
// before the policy is read.
const reloadDebounce = 250 * time.Millisecond

// watchPolicy reloads the policy when its file changes or on SIGHUP. It
// watches the directory, not the file, because editors replace files.
func (d *daemon) watchPolicy(ctx context.Context) {
	path := d.site.Daemon.PolicyPath
	w, err := fsnotify.NewWatcher()
	if err != nil {
		d.log.Warn("policy watcher unavailable; reload with SIGHUP", zap.Error(err))
	} else {
		defer w.Close()
		if err := w.Add(filepath.Dir(path)); err != nil {
			d.log.Warn("policy watcher unavailable; reload with SIGHUP", zap.Error(err))
		}
	}
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w != nil {
		events, errs = w.Events, w.Errors
	}
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	abs, _ := filepath.Abs(path)
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-events:
			if p, _ := filepath.Abs(ev.Name); p == abs && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) != 0 {
				debounce.Reset(reloadDebounce)
			}
		case err := <-errs:
			d.log.Warn("policy watcher", zap.Error(err))
		case <-debounce.C:
			d.reload("file changed")
		case <-d.o.Reload:
			d.reload("SIGHUP")
		}
	}
}

// reload loads and validates the policy; a valid one takes effect at the
// next evaluation, an invalid one is rejected with its errors and the
// running policy stays.
func (d *daemon) reload(why string) {
	pol, hash, err := loadPolicy(d.site)
	now := d.clock.Now()
	if err != nil {
		d.metrics.Reload(false, "", now)
		d.log.Error("policy rejected, keeping the running one", zap.String("trigger", why), zap.Error(err))
		return
	}
	d.mu.Lock()
	if hash == d.policyInfo.SHA256 {
		d.mu.Unlock()
		d.metrics.Reload(true, hash, now)
		d.log.Info("policy unchanged", zap.String("trigger", why), zap.String("sha256", hash))
		return
	}
	d.ctl.SetPolicy(pol)
	d.policyInfo = web.PolicyView{Source: pol.Source, SHA256: hash, LoadedAt: now, Summary: pol.Summary()}
	// A failure is logged (at most once a minute) and shown by appendJournal.
	_ = d.appendJournal(journal.Entry{Time: now, Kind: "reload", Reason: why + ": " + hash})
	d.mu.Unlock()
	d.metrics.Reload(true, hash, now)
	d.log.Info("policy reloaded", zap.String("trigger", why), zap.String("sha256", hash), zap.String("summary", pol.Summary()))
	d.poke()
}

// expireOverrides journals and forgets the overrides the controller dropped
// as expired in the tick that was given the overrides in given (under mu).
// Overrides set or cleared while that tick ran are left as they are now.
func (d *daemon) expireOverrides(now time.Time, given []controller.Override) {
	active := map[string]bool{}
	for _, a := range d.ctl.Overrides() {
		active[a.ID] = true
	}
	expired := map[string]bool{}
	for _, o := range given {
		if !active[o.ID] {
			expired[o.ID] = true
		}
	}
	kept := d.overrides[:0]
	for _, o := range d.overrides {
		if !expired[o.ID] {
			kept = append(kept, o)
			continue
		}
		raw, _ := json.Marshal(overrideView(&o))
		// A failure is logged (at most once a minute) and shown by appendJournal.
		_ = d.appendJournal(journal.Entry{Time: now, Kind: "override_clear", Fleet: o.Fleet, Reason: "expired", Override: raw})
		d.log.Info("override expired", zap.String("id", o.ID))
	}
	d.overrides = kept
}

// runDemo replays the demo trace into the broker, as an external publisher
// would, re-stamping times with the wall clock so the daemon accepts them.
func (d *daemon) runDemo(ctx context.Context, mq config.MQTTConfig, demo *config.DemoConfig) {
	pubCfg := mq
	pubCfg.ClientID = mq.ClientID + "-demo-replay"
	pub, err := mqttio.NewPublisher(pubCfg)
	if err != nil {
		d.log.Error("demo replay", zap.Error(err))
		return
	}
	if err := pub.Start(ctx); err != nil {
		d.log.Error("demo replay", zap.Error(err))
		return
	}
	defer pub.Close()
	for {
		src, _, closer, err := trace.Open([]string{demo.Trace})
		if err != nil {
			d.log.Error("demo replay", zap.Error(err))
			return
		}
		d.log.Info("demo replay started", zap.String("trace", demo.Trace), zap.Float64("speed", demo.Speed))
		n, err := mqttio.Replay(ctx, pub, src, mq.SignalPrefix, demo.Speed, true)
		closer.Close()
		if err != nil && !errors.Is(err, context.Canceled) {
			d.log.Error("demo replay", zap.Error(err), zap.Int("rows", n))
			return
		}
		if ctx.Err() != nil || !demo.Loop {
			return
		}
	}
}
