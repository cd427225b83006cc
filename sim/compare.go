package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/policies"
)

// MaxRuns bounds the runs one `switchd sim` makes: policies times the cross
// product of every --set's values.
const MaxRuns = 64

// Sweep is one --set flag: a path into the policy YAML and the values it
// takes, one run each.
type Sweep struct {
	Path   string
	Values []string
}

// ParseSweep parses "path=v1,v2,..." (a --set flag).
func ParseSweep(s string) (Sweep, error) {
	path, vals, ok := strings.Cut(s, "=")
	path = strings.TrimSpace(path)
	if !ok || path == "" {
		return Sweep{}, fmt.Errorf("--set %q: want path=value[,value...], e.g. hysteresis_usd_mwh=0,5,10", s)
	}
	if _, err := parsePath(path); err != nil {
		return Sweep{}, fmt.Errorf("--set %q: %w", s, err)
	}
	sw := Sweep{Path: path}
	for v := range strings.SplitSeq(vals, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			return Sweep{}, fmt.Errorf("--set %q: empty value", s)
		}
		sw.Values = append(sw.Values, v)
	}
	return sw, nil
}

// Setting is one value given to one policy path.
type Setting struct {
	Path  string `json:"path"`
	Value string `json:"value"`
}

// Variant is one run of a comparison: a policy file with settings applied.
type Variant struct {
	Label  string // for tables and charts: the file, then the settings
	File   string
	Set    []Setting
	Policy *policies.Policy
}

// Variants loads every policy file and applies each combination of the
// sweeps' values to each (the cross product, in flag order, the last
// sweep varying fastest). It refuses more than MaxRuns runs. Each variant
// is parsed on its own, so no two runs share a policy.
func Variants(files []string, sweeps []Sweep, site *config.Site) ([]Variant, error) {
	n := len(files)
	for _, s := range sweeps {
		n *= len(s.Values)
		if n > MaxRuns {
			break
		}
	}
	if n > MaxRuns {
		return nil, fmt.Errorf("%d policies × the --set values make more than %d runs; sweep fewer values at once", len(files), MaxRuns)
	}
	var out []Variant
	var errs []error
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("load policy: %w", err)
		}
		// The file as written must load before it is varied: its own errors
		// are reported with its own lines.
		base, err := policies.ParsePolicy(file, data, site)
		if err != nil {
			return nil, err
		}
		if len(sweeps) == 0 {
			out = append(out, Variant{Label: file, File: file, Policy: base})
			continue
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		idx := make([]int, len(sweeps))
		for {
			set := make([]Setting, len(sweeps))
			for i, s := range sweeps {
				set[i] = Setting{Path: s.Path, Value: s.Values[idx[i]]}
			}
			v, err := applySettings(file, data, &doc, set, site)
			if err != nil {
				errs = append(errs, err)
			} else {
				if len(files) == 1 {
					v.Label = settingsLabel(set)
				}
				out = append(out, v)
			}
			// Next combination: the last sweep varies fastest.
			k := len(idx) - 1
			for ; k >= 0; k-- {
				if idx[k]++; idx[k] < len(sweeps[k].Values) {
					break
				}
				idx[k] = 0
			}
			if k < 0 {
				break
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func settingsLabel(set []Setting) string {
	parts := make([]string, len(set))
	for i, s := range set {
		parts[i] = s.Path + "=" + s.Value
	}
	return strings.Join(parts, " ")
}

// applySettings writes the settings into the policy text and parses it
// with the strict loader. The text is edited in place (a value replaced on
// its own line; a missing last key added to its mapping), so every line of
// the file keeps its number and errors still name file:line:key.
func applySettings(file string, data []byte, doc *yaml.Node, set []Setting, site *config.Site) (Variant, error) {
	v := Variant{File: file, Set: set, Label: file + " " + settingsLabel(set)}
	out, err := editPolicy(file, data, doc, set)
	if err != nil {
		return v, err
	}
	p, err := policies.ParsePolicy(file, out, site)
	if err != nil {
		return v, fmt.Errorf("with --set %s:\n%w", settingsLabel(set), err)
	}
	v.Policy = p
	return v, nil
}

// editPolicy returns the policy text with the settings written in.
func editPolicy(file string, data []byte, doc *yaml.Node, set []Setting) ([]byte, error) {
	lines := lineStarts(data)
	type edit struct {
		at, end int // byte range replaced
		text    string
	}
	var edits []edit
	for _, s := range set {
		steps, _ := parsePath(s.Path) // checked by ParseSweep
		text := yamlScalar(s.Value)
		target, parent, err := lookup(doc, steps)
		if err != nil {
			return nil, fmt.Errorf("--set %s: %s:%w", s.Path, file, err)
		}
		if target != nil {
			at, end, err := scalarSpan(data, lines, target)
			if err != nil {
				return nil, fmt.Errorf("--set %s: %s:%d: %w", s.Path, file, target.Line, err)
			}
			edits = append(edits, edit{at, end, text})
			continue
		}
		// The last key is missing: add it to its mapping.
		key := steps[len(steps)-1].key
		at, ins, err := insertion(data, lines, parent, key, text)
		if err != nil {
			return nil, fmt.Errorf("--set %s: %s:%d: %w", s.Path, file, parent.Line, err)
		}
		edits = append(edits, edit{at, at, ins})
	}
	// Apply from the end of the file backwards, so earlier offsets hold.
	for i := range edits {
		for j := i + 1; j < len(edits); j++ {
			if edits[j].at > edits[i].at {
				edits[i], edits[j] = edits[j], edits[i]
			}
		}
	}
	out := append([]byte(nil), data...)
	for i, e := range edits {
		if i > 0 && e.end > edits[i-1].at {
			return nil, fmt.Errorf("--set %s: two settings edit the same value", settingsLabel(set))
		}
		out = append(out[:e.at:e.at], append([]byte(e.text), out[e.end:]...)...)
	}
	return out, nil
}

// pathStep is one step of a --set path: a mapping key, or a sequence item
// by index or by its name: key.
type pathStep struct {
	key   string
	index int    // -1: not an index
	name  string // a sequence item whose name: is this
	seq   bool
}

// parsePath splits "rules[1].when.price_above_usd_mwh" (or rules[4cp-watch]
// by rule name) into steps.
func parsePath(p string) ([]pathStep, error) {
	var steps []pathStep
	for part := range strings.SplitSeq(p, ".") {
		key, rest, _ := strings.Cut(part, "[")
		if key == "" && len(steps) == 0 {
			return nil, fmt.Errorf("path %q: starts with an index; name the key first, e.g. rules[0]", p)
		}
		if key != "" {
			steps = append(steps, pathStep{key: key, index: -1})
		}
		for rest != "" {
			sel, after, ok := strings.Cut(rest, "]")
			if !ok || sel == "" {
				return nil, fmt.Errorf("path %q: bad index in %q", p, part)
			}
			st := pathStep{seq: true, index: -1}
			if n, err := strconv.Atoi(sel); err == nil {
				if n < 0 {
					return nil, fmt.Errorf("path %q: negative index %d", p, n)
				}
				st.index = n
			} else {
				st.name = sel
			}
			steps = append(steps, st)
			if after == "" {
				break
			}
			if !strings.HasPrefix(after, "[") {
				return nil, fmt.Errorf("path %q: unexpected %q after ]", p, after)
			}
			rest = after[1:]
		}
		if key == "" && !strings.HasPrefix(part, "[") {
			return nil, fmt.Errorf("path %q: empty key", p)
		}
	}
	if len(steps) == 0 || steps[len(steps)-1].seq {
		return nil, fmt.Errorf("path %q: must end in a key", p)
	}
	return steps, nil
}

// lookup walks the document. It returns the scalar the path names, or
// (nil, mapping) when only the last key is missing from that mapping.
func lookup(doc *yaml.Node, steps []pathStep) (target, parent *yaml.Node, err error) {
	n := doc
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	where := ""
	for i, st := range steps {
		last := i == len(steps)-1
		switch {
		case st.seq:
			if n.Kind != yaml.SequenceNode {
				return nil, nil, fmt.Errorf("%d: %s is not a list", n.Line, where)
			}
			var next *yaml.Node
			if st.index >= 0 {
				if st.index >= len(n.Content) {
					return nil, nil, fmt.Errorf("%d: %s has %d items, no [%d]", n.Line, where, len(n.Content), st.index)
				}
				next = n.Content[st.index]
				where += fmt.Sprintf("[%d]", st.index)
			} else {
				var names []string
				for _, item := range n.Content {
					if nm := mapValue(item, "name"); nm != nil && nm.Kind == yaml.ScalarNode {
						if nm.Value == st.name {
							next = item
						}
						names = append(names, nm.Value)
					}
				}
				if next == nil {
					return nil, nil, fmt.Errorf("%d: %s has no item named %q (names: %s)", n.Line, where, st.name, strings.Join(names, ", "))
				}
				where += "[" + st.name + "]"
			}
			n = next
		default:
			if where != "" {
				where += "."
			}
			where += st.key
			if n.Kind != yaml.MappingNode {
				return nil, nil, fmt.Errorf("%d: cannot look up %s: not a mapping", n.Line, where)
			}
			next := mapValue(n, st.key)
			if next == nil {
				if last {
					return nil, n, nil
				}
				return nil, nil, fmt.Errorf("%d: no key %s (only the last key of a path may be missing)", n.Line, where)
			}
			n = next
		}
		if last && n.Kind != yaml.ScalarNode {
			return nil, nil, fmt.Errorf("%d: %s is not a single value (a --set names one number, duration or word)", n.Line, where)
		}
	}
	return n, nil, nil
}

// mapValue returns the value of key in mapping m, or nil.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// lineStarts returns the byte offset of each line's start (index 0 is line
// 1).
func lineStarts(data []byte) []int {
	starts := []int{0}
	for i, c := range data {
		if c == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}

// offset converts a node's line and column (1-based, counted in
// characters) to a byte offset.
func offset(data []byte, lines []int, line, col int) (int, error) {
	if line < 1 || line > len(lines) {
		return 0, fmt.Errorf("line %d out of range", line)
	}
	off := lines[line-1]
	for c := 1; c < col; c++ {
		if off >= len(data) || data[off] == '\n' {
			return 0, fmt.Errorf("column %d out of range", col)
		}
		_, w := utf8.DecodeRune(data[off:])
		off += w
	}
	return off, nil
}

// scalarSpan returns the byte range of a single-line scalar's source text.
func scalarSpan(data []byte, lines []int, n *yaml.Node) (int, int, error) {
	at, err := offset(data, lines, n.Line, n.Column)
	if err != nil {
		return 0, 0, err
	}
	rest := data[at:]
	if eol := bytes.IndexByte(rest, '\n'); eol >= 0 {
		rest = rest[:eol]
	}
	switch {
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 || n.Tag != "" && n.Style&yaml.TaggedStyle != 0:
	case n.Style&yaml.DoubleQuotedStyle != 0 && len(rest) > 0 && rest[0] == '"':
		for i := 1; i < len(rest); i++ {
			switch rest[i] {
			case '\\':
				i++
			case '"':
				return at, at + i + 1, nil
			}
		}
	case n.Style&yaml.SingleQuotedStyle != 0 && len(rest) > 0 && rest[0] == '\'':
		for i := 1; i < len(rest); i++ {
			if rest[i] == '\'' {
				if i+1 < len(rest) && rest[i+1] == '\'' {
					i++
					continue
				}
				return at, at + i + 1, nil
			}
		}
	case bytes.HasPrefix(rest, []byte(n.Value)):
		return at, at + len(n.Value), nil
	}
	return 0, 0, errors.New("the value spans lines or is tagged; write it on one line to vary it")
}

// insertion returns where and what to insert to add key: text to mapping m.
func insertion(data []byte, lines []int, m *yaml.Node, key, text string) (int, string, error) {
	if m.Style&yaml.FlowStyle != 0 {
		// {a: 1, b: 2}: add ", key: text" after the last value, on its line.
		if len(m.Content) == 0 {
			at, err := offset(data, lines, m.Line, m.Column)
			if err != nil || at >= len(data) || data[at] != '{' {
				return 0, "", errors.New("cannot add a key to this mapping; write it into the file")
			}
			return at + 1, key + ": " + text, nil
		}
		lastVal := m.Content[len(m.Content)-1]
		if lastVal.Kind != yaml.ScalarNode {
			return 0, "", errors.New("cannot add a key to this mapping; write it into the file")
		}
		_, end, err := scalarSpan(data, lines, lastVal)
		if err != nil {
			return 0, "", err
		}
		return end, ", " + key + ": " + text, nil
	}
	if len(m.Content) == 0 {
		return 0, "", errors.New("cannot add a key to an empty mapping; write it into the file")
	}
	// A block mapping: a new line after its last line, indented like its
	// keys. Only lines after it shift, and they loaded before the edit.
	last := maxLine(m)
	indent := strings.Repeat(" ", m.Content[0].Column-1)
	if last >= len(lines) {
		ins := indent + key + ": " + text + "\n"
		if len(data) > 0 && data[len(data)-1] != '\n' {
			ins = "\n" + ins
		}
		return len(data), ins, nil
	}
	return lines[last], indent + key + ": " + text + "\n", nil
}

// maxLine is the last line any node under n starts on.
func maxLine(n *yaml.Node) int {
	l := n.Line
	for _, c := range n.Content {
		l = max(l, maxLine(c))
	}
	return l
}

// yamlScalar returns v as YAML source: as written when YAML reads it back
// as the same plain scalar, double-quoted otherwise.
func yamlScalar(v string) string {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(v), &n); err == nil && len(n.Content) == 1 {
		c := n.Content[0]
		if c.Kind == yaml.ScalarNode && c.Style == 0 && c.Value == v && !strings.ContainsAny(v, "#\n") {
			return v
		}
	}
	return strconv.Quote(v)
}

// Outcome is one run's report, with the settings that made it.
type Outcome struct {
	Label string    `json:"label"`
	File  string    `json:"policy_file"`
	Set   []Setting `json:"set,omitempty"`
	*Report
}

// CompareAll runs Compare for every variant, at most GOMAXPROCS at a time.
// Each run builds its own controllers and planners from its own policy;
// base supplies everything else (Policy and OnInterval are set per run).
// hook, when set, returns the per-run interval callbacks for run i.
func CompareAll(ctx context.Context, base CompareOptions, vs []Variant, hook func(i int, o *CompareOptions)) ([]Outcome, error) {
	out := make([]Outcome, len(vs))
	errs := make([]error, len(vs))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	var wg sync.WaitGroup
	for i := range vs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			o := base
			o.Policy = vs[i].Policy
			if hook != nil {
				hook(i, &o)
			}
			rep, err := Compare(ctx, o)
			if err != nil {
				errs[i] = fmt.Errorf("%s: %w", vs[i].Label, err)
				cancel()
				return
			}
			out[i] = Outcome{Label: vs[i].Label, File: vs[i].File, Set: vs[i].Set, Report: rep}
		})
	}
	wg.Wait()
	for _, err := range errs {
		// The first real failure, not the cancellations it caused.
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, err
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// WriteSideBySide writes several runs as one table: a column per run, then
// the baselines and the oracle once (from the first run; a note says when
// another run's differ, as they do when a run changes the fallbacks).
func WriteSideBySide(w io.Writer, outs []Outcome) error {
	if len(outs) == 0 {
		return errors.New("no runs")
	}
	var b strings.Builder
	r0 := outs[0].Report
	tr := &r0.Trace
	fmt.Fprintf(&b, "SIMULATED replay (simulated devices, real controller) — site %s, %d runs side by side\n", r0.Site, len(outs))
	fmt.Fprintf(&b, "trace: %s\n", strings.Join(tr.Files, ", "))
	writeRepeated(&b, tr.Repeated)
	fmt.Fprintf(&b, "       %s to %s, %d intervals, %.1f h\n", tr.Start.Format("2006-01-02T15:04:05Z07:00"), tr.End.Format("2006-01-02T15:04:05Z07:00"), tr.Intervals, tr.Hours)
	for i, o := range outs {
		fmt.Fprintf(&b, "  [%d] %s\n", i+1, o.Label)
	}
	if f := r0.Forecast; f != nil {
		fmt.Fprintf(&b, "price forecast (every run, not the baselines): %s\n", f.Description)
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	b0 := &r0.Baselines
	cols := make([]*RunReport, 0, len(outs)+2)
	head := "\t"
	for i, o := range outs {
		cols = append(cols, &o.RunReport)
		head += fmt.Sprintf("[%d]\t", i+1)
	}
	cols = append(cols, &b0.AlwaysOn, &b0.ThresholdDebounce)
	fmt.Fprintln(tw, head+"always_on\tthreshold_debounce\toracle\t")
	line := func(name string, f func(*RunReport) string, oracle string) {
		fmt.Fprintf(tw, "%s\t", name)
		for _, rr := range cols {
			fmt.Fprintf(tw, "%s\t", f(rr))
		}
		fmt.Fprintf(tw, "%s\t\n", oracle)
	}
	perRun := func(name string, f func(*Report) string) {
		fmt.Fprintf(tw, "%s\t", name)
		for _, o := range outs {
			fmt.Fprintf(tw, "%s\t", f(o.Report))
		}
		fmt.Fprintln(tw, "\t\t\t")
	}
	usd := func(v float64) string { return fmt.Sprintf("%.0f", v) }
	line("profit (USD)", func(rr *RunReport) string { return usd(rr.ProfitUSD) }, usd(b0.Oracle.ProfitUSD))
	perRun("oracle capture", func(r *Report) string {
		if r.OracleCapture == nil {
			return "-"
		}
		return fmt.Sprintf("%.1f%%", 100**r.OracleCapture)
	})
	if r0.Forecast != nil {
		perRun("forecast gain (USD)", func(r *Report) string {
			if r.Forecast == nil {
				return "-"
			}
			return fmt.Sprintf("%+.0f", r.Forecast.GainUSD)
		})
	}
	perRun("vs always_on (USD)", func(r *Report) string { return usd(r.ProfitUSD - r.Baselines.AlwaysOn.ProfitUSD) })
	perRun("vs threshold_debounce (USD)", func(r *Report) string { return usd(r.ProfitUSD - r.Baselines.ThresholdDebounce.ProfitUSD) })
	moneyRows(line)
	tailRows(line)
	r0.cpRows(line)
	aiRows(line, cols...)
	if r0.CoincidentPeak != nil && r0.CoincidentPeak.Computed {
		perRun("net of CP vs threshold_debounce (USD)", func(r *Report) string {
			if r.CP == nil || r.Baselines.ThresholdDebounce.CP == nil {
				return "-"
			}
			return usd(r.CP.ProfitNetUSD - r.Baselines.ThresholdDebounce.CP.ProfitNetUSD)
		})
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "oracle: %s (exact: %v)\n", b0.Oracle.Method, b0.Oracle.Exact)
	if r0.Inputs != nil {
		r0.Inputs.writeText(&b)
		b.WriteString("  (the inputs of run [1]; every run's are in --format json)\n")
	}
	for i, o := range outs[1:] {
		if !sameBaselines(o.Report, r0) {
			fmt.Fprintf(&b, "note: run [%d]'s baselines or oracle differ from run [1]'s (its fallbacks or rules differ); its own are in --format json, and its oracle capture and margins above use them\n", i+2)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// sameBaselines reports whether two runs were measured against the same
// baselines and bound.
func sameBaselines(a, b *Report) bool {
	x, y := &a.Baselines, &b.Baselines
	return x.AlwaysOn.ProfitUSD == y.AlwaysOn.ProfitUSD && x.ThresholdDebounce.ProfitUSD == y.ThresholdDebounce.ProfitUSD &&
		x.AlwaysOn.Switches == y.AlwaysOn.Switches && x.ThresholdDebounce.Switches == y.ThresholdDebounce.Switches &&
		x.Oracle == y.Oracle
}
