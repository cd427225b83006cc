package daemon

import (
	"sync"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/controller"
	"github.com/switchd/switchd/controller/journal"
)

// maxLateEntries bounds the entries kept for a journal that keeps failing:
// about a day of sheds at one a minute. Beyond it the oldest are dropped
// (and counted in the note entry): the log has them too.
const maxLateEntries = 4096

// lateRecord keeps what was sent while the journal failed, so that it is
// journalled, with its original times, by the next append that succeeds:
// the decision, the sheds actually sent, their acknowledgement and the
// commanded state they left. A restart then resumes from what the devices
// were told, not from the state before the outage.
//
// Commands and Applied run in the loop's Tick; appendJournal also runs from
// HTTP handlers (overrides), hence the mutex, held across the append so
// that late entries keep their place in the chain.
type lateRecord struct {
	mu      sync.Mutex
	pending []journal.Entry
	dropped int
	// failedAt is the tick whose Commands could not be journalled; zero
	// when the last one was. decision and before belong to it.
	failedAt time.Time
	decision *journal.Entry
	before   map[string][switchd.NumModes]int // commanded state per fleet before the tick
}

// failed remembers a tick whose batch could not be journalled: its
// decision, and each fleet's commanded state before the commands, from
// which the state after the sheds actually sent is computed.
func (l *lateRecord) failed(now time.Time, decision journal.Entry, cmds []controller.FleetCommands) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failedAt, l.decision = now, &decision
	l.before = make(map[string][switchd.NumModes]int, len(cmds))
	for _, fc := range cmds {
		b := fc.After
		for _, c := range fc.Commands {
			b[c.To] -= c.Count
			b[c.From] += c.Count
		}
		l.before[fc.Fleet] = b
	}
}

// succeeded forgets the failed tick: this tick's batch is journalled.
func (l *lateRecord) succeeded() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failedAt, l.decision, l.before = time.Time{}, nil, nil
}

// sent records the commands a fleet was sent in tick now and the ack, if
// that tick's batch could not be journalled, and reports whether it did.
// state builds the fleet's state entry from its commanded counts.
func (l *lateRecord) sent(now time.Time, ack journal.Entry, cmds []switchd.Command, state func(counts [switchd.NumModes]int) journal.Entry) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failedAt.IsZero() || !l.failedAt.Equal(now) {
		return false
	}
	if l.decision != nil {
		d := *l.decision
		d.Reason = "journalled late (the journal was failing; only sheds were sent): " + d.Reason
		l.add(d)
		l.decision = nil
	}
	after := l.before[ack.Fleet]
	for _, c := range cmds {
		l.add(journal.Entry{Time: now, Kind: journal.KindCommand, Fleet: ack.Fleet, From: c.From.String(), To: c.To.String(), Count: c.Count})
		after[c.From] -= c.Count
		after[c.To] += c.Count
	}
	l.before[ack.Fleet] = after // a later fleet of the same name cannot occur; kept for symmetry
	if ack.Err == "" {
		l.add(state(after))
	}
	l.add(ack)
	return true
}

// add appends one pending entry, dropping the oldest beyond the bound.
// Called with l.mu held.
func (l *lateRecord) add(e journal.Entry) {
	if len(l.pending) >= maxLateEntries {
		l.pending = l.pending[1:]
		l.dropped++
	}
	l.pending = append(l.pending, e)
}

// stateEntry is the journal's state entry for fleet fi with counts
// commanded per mode.
func (d *daemon) stateEntry(now time.Time, fi int, counts [switchd.NumModes]int) journal.Entry {
	spec := &d.site.Fleets[fi].Spec
	st := journal.Entry{Time: now, Kind: journal.KindState, Fleet: spec.Name, Counts: map[string]int{}, KW: map[string]float64{}}
	for _, m := range switchd.Modes {
		if m != switchd.ModeOff && !spec.Supports[m] {
			continue
		}
		st.Counts[m.String()] = counts[m]
		st.KW[m.String()] = float64(counts[m]) * spec.Modes[m].PowerKW
	}
	return st
}
