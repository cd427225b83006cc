// Package strictyaml decodes one YAML file strictly against schema structs and
// collects every problem with its file, line and key path. The site and
// policy parsers (packages config and policies) share it. It imports yaml
// only, and never panics on input.
package strictyaml

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"
)

// ConfigError is one problem in a configuration file. The Load and Parse
// functions report every problem at once, joined with errors.Join; each one
// prints as "<file>:<line>: <key path>: <message>", which is what
// `switchd validate` shows.
type ConfigError struct {
	File string
	Line int    // 1-based; 0 when the parser could not tell
	Path string // key path such as rules[1].when.for; empty for syntax errors
	Msg  string
}

// Error implements error.
func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(oneLine(e.Path))
		b.WriteString(": ")
	}
	b.WriteString(oneLine(e.Msg))
	return b.String()
}

// oneLine escapes control characters (a quoted YAML key may hold a newline)
// so that every problem prints as exactly one line.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// maxNodes bounds the nodes one file may expand to. Aliases can make a small
// file expand exponentially ("billion laughs"); no real config comes close.
const maxNodes = 100_000

// Loader decodes one YAML file strictly and collects every problem with its
// line and key path. It walks the yaml.Node tree against the schema structs
// instead of using yaml's Decoder: KnownFields(true) rejects unknown keys too,
// but names neither the key path nor, for type errors, which key was wrong.
// The walk is as strict (unknown and duplicate keys, wrong types) and knows
// where every key is, so validation can point at lines as well.
type Loader struct {
	file  string
	errs  []*ConfigError
	lines map[string]int // key path → line of the key
	// failed holds paths that did not decode; validation of them or of
	// anything under them is not reported, since it would only repeat the
	// first problem as "required" or "must be positive".
	failed map[string]bool
	seen   map[ConfigError]bool // problems already reported
	nodes  int
}

// NewLoader returns a Loader for file, the name used in messages.
func NewLoader(file string) *Loader {
	return &Loader{file: file, lines: map[string]int{"": 1}, failed: map[string]bool{}, seen: map[ConfigError]bool{}}
}

// Errorf reports a validation problem at path, unless path or one of its
// parents failed to decode.
func (l *Loader) Errorf(path, format string, args ...any) {
	for p := path; ; p = parentPath(p) {
		if l.failed[p] {
			return
		}
		if p == "" {
			break
		}
	}
	l.Add(l.Line(path), path, fmt.Sprintf(format, args...))
}

// Failf reports a decoding problem at path and marks the path failed.
func (l *Loader) Failf(path string, line int, format string, args ...any) {
	l.failed[path] = true
	l.Add(line, path, fmt.Sprintf(format, args...))
}

// Add reports msg at line and path, once.
func (l *Loader) Add(line int, path, msg string) {
	e := ConfigError{File: l.file, Line: line, Path: path, Msg: msg}
	if l.seen[e] {
		return
	}
	l.seen[e] = true
	l.errs = append(l.errs, &e)
}

// Line returns the line of path, or of its nearest ancestor present in the
// file: a missing key is reported where its parent is.
func (l *Loader) Line(path string) int {
	for p := path; ; p = parentPath(p) {
		if n, ok := l.lines[p]; ok {
			return n
		}
		if p == "" {
			return 0
		}
	}
}

// Has reports whether path appears in the file (even with a null value).
func (l *Loader) Has(path string) bool {
	_, ok := l.lines[path]
	return ok
}

// Err returns every problem, ordered by line, or nil.
func (l *Loader) Err() error {
	if len(l.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(l.errs, func(a, b *ConfigError) int { return a.Line - b.Line })
	errs := make([]error, len(l.errs))
	for i, e := range l.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// parentPath strips the last key or index from a key path.
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// JoinPath appends key to a key path.
func JoinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// IndexPath appends a list index to a key path.
func IndexPath(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse decodes data, a single YAML document, into out (a pointer to a
// schema struct). It reports false when the document could not be parsed at
// all, in which case validating out would only add noise.
func (l *Loader) Parse(data []byte, out any) (ok bool) {
	// The Parse functions promise never to panic on input: should the YAML
	// parser ever do so, the file is reported as unreadable instead.
	defer func() {
		if r := recover(); r != nil {
			l.Add(0, "", fmt.Sprintf("yaml: parser failed: %v", r))
			ok = false
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		l.syntax(data, err)
		return false
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		l.Add(extra.Line, "", "only one YAML document is allowed")
		return false
	case !errors.Is(err, io.EOF):
		l.syntax(data, err)
		return false
	}
	root := &doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		root = doc.Content[0]
		l.lines[""] = root.Line
	}
	if doc.Kind == 0 {
		// An empty file is an empty mapping: validation then names every
		// required key.
		root = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: 1}
	}
	l.Decode(root, reflect.ValueOf(out).Elem(), "")
	// Past the budget the decoded tree is partial: validating it would
	// only report what is missing from it.
	return l.nodes <= maxNodes
}

func (l *Loader) syntax(data []byte, err error) {
	msg := err.Error()
	m := yamlLineRE.FindStringSubmatch(msg)
	if m == nil {
		l.Add(0, "", msg)
		return
	}
	n, _ := strconv.Atoi(m[1])
	msg = "yaml: " + m[2]
	// The parser's words for a tab are obscure; tabs are the usual cause.
	if lines := bytes.Split(data, []byte("\n")); n >= 1 && n <= len(lines) && bytes.Contains(lines[n-1], []byte("\t")) {
		msg += " (a tab? YAML indents with spaces only)"
	}
	l.Add(n, "", msg)
}

// NodeDecoder is implemented by schema types that decode themselves from a
// node (durations, ordered maps, name lists). Decode calls DecodeNode
// instead of walking the value itself.
type NodeDecoder interface {
	DecodeNode(l *Loader, n *yaml.Node, path string)
}

var (
	nodeType     = reflect.TypeFor[yaml.Node]()
	durationType = reflect.TypeFor[time.Duration]()
)

// resolve follows aliases and charges the node budget. It reports false when
// the budget is spent, after reporting that once.
func (l *Loader) resolve(n *yaml.Node) (*yaml.Node, bool) {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	l.nodes++
	if l.nodes == maxNodes+1 {
		l.Add(0, "", fmt.Sprintf("more than %d values (too many aliases?)", maxNodes))
	}
	if n == nil || n.Kind == yaml.AliasNode || l.nodes > maxNodes {
		return nil, false
	}
	return n, true
}

// Decode decodes n into v, reporting problems under path.
func (l *Loader) Decode(n *yaml.Node, v reflect.Value, path string) {
	n, ok := l.resolve(n)
	if !ok {
		return
	}
	if d, ok := v.Addr().Interface().(NodeDecoder); ok {
		d.DecodeNode(l, n, path)
		return
	}
	if v.Type() == nodeType {
		v.Set(reflect.ValueOf(*n))
		return
	}
	if v.Type() == durationType {
		var d Duration
		d.DecodeNode(l, n, path)
		v.SetInt(int64(d))
		return
	}
	if tu, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok && v.Kind() != reflect.Struct {
		if s, ok := l.str(n, path); ok {
			if err := tu.UnmarshalText([]byte(s)); err != nil {
				l.Failf(path, n.Line, "%v", err)
			}
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if IsNull(n) {
			return
		}
		p := reflect.New(v.Type().Elem())
		l.Decode(n, p.Elem(), path)
		v.Set(p)
	case reflect.Struct:
		l.decodeStruct(n, v, path)
	case reflect.Slice:
		l.decodeSlice(n, v, path)
	case reflect.String:
		if s, ok := l.str(n, path); ok {
			v.SetString(s)
		}
	case reflect.Float64:
		if f, ok := l.Number(n, path); ok {
			v.SetFloat(f)
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		if i, ok := l.integer(n, path); ok {
			v.SetInt(int64(i))
		}
	case reflect.Uint, reflect.Uint64, reflect.Uint32, reflect.Uint16:
		if i, ok := l.integer(n, path); ok {
			if i < 0 {
				l.Failf(path, n.Line, "must not be negative (got %d)", i)
			} else {
				v.SetUint(uint64(i))
			}
		}
	case reflect.Bool:
		if b, ok := l.boolean(n, path); ok {
			v.SetBool(b)
		}
	default:
		// Only reachable if a schema struct gains a field of a new type.
		l.Failf(path, n.Line, "cannot decode into %s", v.Type())
	}
}

func (l *Loader) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if IsNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		l.Failf(path, n.Line, "must be a mapping (got %s)", Describe(n))
		return
	}
	var names []string
	fields := map[string][]int{}
	structFields(v.Type(), nil, fields, &names)
	l.eachPair(n, path, func(key string, kn, vn *yaml.Node, p string) {
		i, ok := fields[key]
		if !ok {
			best := Closest(key, names)
			if best != "" {
				// The key was most likely meant as best: do not also
				// report best as missing.
				l.failed[JoinPath(path, best)] = true
				l.Failf(p, kn.Line, "unknown key (did you mean %s?)", best)
			} else {
				l.Failf(p, kn.Line, "unknown key")
			}
			return
		}
		l.Decode(vn, v.FieldByIndex(i), p)
	})
}

// structFields collects the yaml keys of t's fields with their index paths;
// fields tagged `yaml:",inline"` contribute their own fields.
func structFields(t reflect.Type, prefix []int, fields map[string][]int, names *[]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		idx := append(append([]int(nil), prefix...), i)
		if opts == "inline" && f.Type.Kind() == reflect.Struct {
			structFields(f.Type, idx, fields, names)
			continue
		}
		if name != "" && name != "-" && f.IsExported() {
			fields[name] = idx
			*names = append(*names, name)
		}
	}
}

// eachPair calls f for each key of mapping n, after checking that keys are
// plain strings and not repeated, and recording their lines.
func (l *Loader) eachPair(n *yaml.Node, path string, f func(key string, kn, vn *yaml.Node, p string)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, ok := l.resolve(n.Content[i])
		if !ok {
			return
		}
		vn := n.Content[i+1]
		if kn.Kind != yaml.ScalarNode {
			l.Failf(path, kn.Line, "keys must be plain names (got %s)", Describe(kn))
			continue
		}
		key := kn.Value
		p := JoinPath(path, key)
		if kn.ShortTag() == "!!merge" {
			// What the merge would have brought in is unknown: report
			// nothing else about this mapping.
			l.failed[path] = true
			l.Failf(p, kn.Line, "merge keys (<<) are not supported; repeat the keys")
			continue
		}
		if first, dup := seen[key]; dup {
			l.Failf(p, kn.Line, "duplicate key (first at line %d)", first)
			continue
		}
		seen[key] = kn.Line
		l.lines[p] = kn.Line
		f(key, kn, vn, p)
	}
}

func (l *Loader) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if IsNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		l.Failf(path, n.Line, "must be a list (got %s)", Describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		p := IndexPath(path, i)
		l.lines[p] = item.Line
		l.Decode(item, s.Index(i), p)
	}
	v.Set(s)
}

func (l *Loader) str(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		l.Failf(path, n.Line, "must be a string (got %s)", Describe(n))
		return "", false
	}
	if IsNull(n) {
		return "", false
	}
	return n.Value, true
}

// Number decodes a finite number, reporting anything else at path.
func (l *Loader) Number(n *yaml.Node, path string) (float64, bool) {
	if IsNull(n) {
		return 0, false
	}
	if t := n.ShortTag(); n.Kind != yaml.ScalarNode || (t != "!!int" && t != "!!float") {
		l.Failf(path, n.Line, "must be a number (got %s)", Describe(n))
		return 0, false
	}
	var f float64
	if err := n.Decode(&f); err != nil {
		l.Failf(path, n.Line, "number out of range (got %s)", n.Value)
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		l.Failf(path, n.Line, "must be a finite number (got %s)", n.Value)
		return 0, false
	}
	return f, true
}

func (l *Loader) integer(n *yaml.Node, path string) (int, bool) {
	if IsNull(n) {
		return 0, false
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		l.Failf(path, n.Line, "must be a whole number (got %s)", Describe(n))
		return 0, false
	}
	var i int
	if err := n.Decode(&i); err != nil {
		l.Failf(path, n.Line, "must be a whole number in range (got %s)", n.Value)
		return 0, false
	}
	return i, true
}

func (l *Loader) boolean(n *yaml.Node, path string) (bool, bool) {
	if IsNull(n) {
		return false, false
	}
	// Only true and false: YAML 1.1's yes/no/on/off are strings in yaml.v3,
	// and taking "yes" as a string here would silently mean false.
	var b bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		l.Failf(path, n.Line, "must be true or false (got %s)", Describe(n))
		return false, false
	}
	return b, true
}

// IsNull reports whether n is an explicit null (or an empty value).
func IsNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// Describe names what a node holds, for "got ..." in messages.
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if IsNull(n) {
			return "nothing"
		}
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return strconv.Quote(v)
	}
	return "an alias"
}

// Duration is a time.Duration written as a Go duration string ("90s",
// "30m", "3h"); a bare 0 is accepted too.
type Duration time.Duration

func (d *Duration) DecodeNode(l *Loader, n *yaml.Node, path string) {
	if IsNull(n) {
		return
	}
	if n.Kind != yaml.ScalarNode {
		l.Failf(path, n.Line, "must be a duration such as 90s, 30m or 3h (got %s)", Describe(n))
		return
	}
	switch n.ShortTag() {
	case "!!str":
		v, err := time.ParseDuration(n.Value)
		if err != nil {
			l.Failf(path, n.Line, "bad duration %s (want e.g. 90s, 30m or 3h)", Describe(n))
			return
		}
		*d = Duration(v)
	case "!!int", "!!float":
		if f, err := strconv.ParseFloat(n.Value, 64); err == nil && f == 0 {
			*d = 0
			return
		}
		l.Failf(path, n.Line, "bad duration %s: missing unit (want e.g. %ss or %sm)", n.Value, n.Value, n.Value)
	default:
		l.Failf(path, n.Line, "must be a duration such as 90s, 30m or 3h (got %s)", Describe(n))
	}
}

// NameList is a list of names that may also be written as a single name.
// Entries are validated under path[i] either way.
type NameList []string

func (s *NameList) DecodeNode(l *Loader, n *yaml.Node, path string) {
	if IsNull(n) {
		return
	}
	switch n.Kind {
	case yaml.ScalarNode:
		l.lines[IndexPath(path, 0)] = n.Line
		*s = NameList{n.Value}
	case yaml.SequenceNode:
		out := make(NameList, 0, len(n.Content))
		for i, item := range n.Content {
			p := IndexPath(path, i)
			l.lines[p] = item.Line
			item, ok := l.resolve(item)
			if !ok {
				return
			}
			if item.Kind != yaml.ScalarNode || IsNull(item) {
				// Keep the slot so that later entries keep their index.
				l.Failf(p, item.Line, "must be a name (got %s)", Describe(item))
				out = append(out, "")
				continue
			}
			out = append(out, item.Value)
		}
		*s = out
	default:
		l.Failf(path, n.Line, "must be a name or a list of names (got %s)", Describe(n))
	}
}

// Entry is one key of an OrderedMap, with the key path of its value.
type Entry[T any] struct {
	Key   string
	Path  string
	Value T
}

// OrderedMap is a mapping with free-form keys (fleet names, modes, signals),
// kept in file order so that messages come out in the order an operator
// reads them.
type OrderedMap[T any] []Entry[T]

func (m *OrderedMap[T]) DecodeNode(l *Loader, n *yaml.Node, path string) {
	if IsNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		l.Failf(path, n.Line, "must be a mapping (got %s)", Describe(n))
		return
	}
	l.eachPair(n, path, func(key string, _, vn *yaml.Node, p string) {
		e := Entry[T]{Key: key, Path: p}
		l.Decode(vn, reflect.ValueOf(&e.Value).Elem(), p)
		*m = append(*m, e)
	})
}

// Closest returns the known name Closest to key if it is close enough to be
// a likely typo, else "".
func Closest(key string, known []string) string {
	best, bestD := "", len(key)/3+2
	for _, k := range known {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return max(len(a), len(b))
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Checks shared by the site and policy validators. Each reports at path and
// returns whether the value passed, so callers can skip dependent checks.

// NonNegative reports a negative v at path.
func (l *Loader) NonNegative(path string, v float64) bool {
	if v < 0 {
		l.Errorf(path, "must not be negative (got %s)", FmtFloat(v))
		return false
	}
	return true
}

// Positive reports a v that is not above 0 at path.
func (l *Loader) Positive(path string, v float64) bool {
	if v <= 0 {
		l.Errorf(path, "must be positive (got %s)", FmtFloat(v))
		return false
	}
	return true
}

// FmtFloat prints a number the way it would be written in the file:
// 1000000, not 1e+06; only tiny or huge magnitudes get an exponent.
func FmtFloat(v float64) string {
	if a := math.Abs(v); a == 0 || (a >= 1e-4 && a < 1e21) {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// FmtDuration prints a duration the way an operator writes one: 5m, 1h30m,
// not 5m0s or 1h30m0s.
func FmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// SetLine records that path is at line, for a block decoded on its own (a
// driver's settings) whose position in the file is known.
func (l *Loader) SetLine(path string, line int) {
	l.lines[path] = line
}

// Given reports whether path is set to a non-empty string, reporting an
// empty one: a key that is there must say something.
func (l *Loader) Given(path, v string) bool {
	if !l.Has(path) {
		return false
	}
	if v == "" {
		l.Errorf(path, "must not be empty")
		return false
	}
	return true
}

// Warning formats a problem at path that is not an error (the file stays
// valid) exactly as Err prints an error, with the file and line.
func (l *Loader) Warning(path, format string, args ...any) string {
	e := ConfigError{File: l.file, Line: l.Line(path), Path: path, Msg: fmt.Sprintf(format, args...)}
	return e.Error()
}

// HasKeys reports whether the mapping at path holds any key, known or not:
// an empty mapping is often a section whose keys were deleted.
func (l *Loader) HasKeys(path string) bool {
	prefix := path + "."
	for p := range l.lines {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}
