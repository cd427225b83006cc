package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/switchd/switchd/controller/journal"
	"github.com/switchd/switchd/dr"
)

// drCompliance is one event's compliance as the journal holds it: its
// latest record (the final one once ended) and its moments.
type drCompliance struct {
	Record  dr.Record  `json:"record"`
	Moments []drMoment `json:"moments"`
	// Final is true when the event's ended entry was found.
	Final bool `json:"final"`
}

// drMoment is one dr entry: when and what.
type drMoment struct {
	Time   time.Time `json:"time"`
	Moment string    `json:"moment"`
	Seq    uint64    `json:"seq"`
	Alarm  string    `json:"alarm,omitempty"`
}

// journalEvents prints the demand-response compliance records of a
// journal: `switchd journal events FILE [--format text|json]`.
func journalEvents(file, format string, stdout io.Writer) error {
	if format != "text" && format != "json" {
		return usageError{fmt.Errorf("--format must be text or json (got %q)", format)}
	}
	// Rotated segments (FILE.000001, ...) are read too, oldest first.
	f, err := journal.OpenChain(file)
	if err != nil {
		return err
	}
	defer f.Close()
	entries, err := journal.DREntries(f)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	var order []string
	byID := map[string]*drCompliance{}
	for _, e := range entries {
		var rec dr.Record
		if err := json.Unmarshal(e.DR, &rec); err != nil {
			return fmt.Errorf("%s: entry %d: dr record: %w", file, e.Seq, err)
		}
		c, ok := byID[rec.Event.ID]
		if !ok {
			c = &drCompliance{}
			byID[rec.Event.ID] = c
			order = append(order, rec.Event.ID)
		}
		c.Record = rec
		c.Final = c.Final || e.Reason == "ended"
		m := drMoment{Time: e.Time, Moment: e.Reason, Seq: e.Seq}
		if e.Reason == "alarm" {
			m.Alarm = rec.Alarm
		}
		c.Moments = append(c.Moments, m)
	}
	out := make([]*drCompliance, 0, len(order))
	for _, id := range order {
		out = append(out, byID[id])
	}
	if format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	return writeCompliance(stdout, out)
}

// writeCompliance prints one line per event, then its intervals.
func writeCompliance(w io.Writer, cs []*drCompliance) error {
	if len(cs) == 0 {
		_, err := fmt.Fprintln(w, "no demand-response events in the journal")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, c := range cs {
		r := &c.Record
		kind := "target"
		amount := 0.0
		if r.Event.ShedKW != nil {
			kind, amount = "shed", *r.Event.ShedKW
		} else if r.Event.TargetKW != nil {
			amount = *r.Event.TargetKW
		}
		met := "no"
		if r.Met {
			met = "yes"
		}
		alarm := r.Alarm
		if alarm == "" {
			alarm = "-"
		}
		final := "final"
		if !c.Final {
			final = "so far (" + string(r.Phase) + ")"
		}
		fmt.Fprintf(tw, "event %s\tprogram %s\t%s %.1f kW\t%s\n", r.Event.ID, r.Event.Program, kind, amount, final)
		fmt.Fprintf(tw, "  notice %s\tstart %s\tdeadline %s\tend %s\n", ts(r.Event.Notice), ts(r.Event.Start), ts(r.Event.DeadlineOrStart()), ts(r.Event.End))
		fmt.Fprintf(tw, "  baseline %.1f kW (%.0f%% measured)\tcap %.1f kW\tmet by deadline %s at %s\tshortfall %.3f kWh\talarm %s\n",
			r.BaselineKW, 100*r.BaselineKnown, r.CapKW, met, ts(r.MetAt), r.ShortfallKWh, alarm)
		for _, in := range r.Intervals {
			fmt.Fprintf(tw, "  interval %s\tmean %.1f kW\tover %.3f kWh\tmeasured %.0f%%\n", ts(in.Start), in.MeanKW, in.OverKWh, 100*in.Known)
		}
	}
	return tw.Flush()
}
