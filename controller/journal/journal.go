// Package journal is switchd's append-only, fsynced, hash-chained decision
// journal: every decision and command is made durable here before it is
// sent, and the file later serves as curtailment evidence for
// demand-response settlement.
//
// # Format
//
// The journal is JSON Lines: one [Entry] per line, each line ending in "\n",
// appended and never rewritten. Entries are written by encoding/json from the
// Entry struct, so the field order is fixed and "hash" is always the last
// field of a line.
//
// # Hash chain
//
// For a line L (without its newline), whose last field is
// "hash":"<64 lower-case hex digits>", the entry's hash is
//
//	hash = hex(SHA-256(L with the hash value emptied, i.e. ending in "hash":""}))
//
// which is the SHA-256 of the entry serialised with Hash == "" exactly as it
// was written. The first entry has seq 1 and prev ""; every later entry has
// seq = previous seq + 1 and prev = the previous entry's hash. A third party
// can check one line with standard tools:
//
//	sed -n 1p journal.jsonl | sed 's/"hash":"[0-9a-f]*"}$/"hash":""}/' | tr -d '\n' | sha256sum
//
// The chain proves that no entry was edited, removed or inserted after the
// fact, short of rewriting every later entry too; publishing the latest hash
// elsewhere (see [Journal.Last]) anchors it against that.
//
// # Imports
//
// The package is independent of the controller: it imports only the standard
// library and zap, and the daemon converts decisions into entries. It must not
// import controller, policies or any driver.
package journal

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Entry kinds.
const (
	KindStart         = "start"          // the daemon started (and recovered from the journal)
	KindDecision      = "decision"       // the policy evaluation of one tick: rules fired
	KindCommand       = "command"        // Count devices of Fleet told to go From -> To
	KindAck           = "ack"            // a fleet's driver answered; Err is empty when it accepted
	KindState         = "state"          // a fleet's commanded devices and kW per mode
	KindOverride      = "override"       // an operator override was set
	KindOverrideClear = "override_clear" // operator overrides were removed
	KindReload        = "reload"         // a new policy took effect
	KindStop          = "stop"           // the daemon stopped cleanly
	// KindDR is a demand-response moment (Reason: received, started,
	// alarm, ended) with the event's compliance record as of then in DR;
	// the ended entry is the event's final record (see events.go).
	KindDR = "dr"
	// KindHA records a change of this instance's high-availability role
	// (leader or follower) and the term it saw (see Entry.Term).
	KindHA = "ha"
)

var kinds = map[string]bool{
	KindStart: true, KindDecision: true, KindCommand: true, KindAck: true,
	KindState: true, KindOverride: true, KindOverrideClear: true, KindReload: true, KindStop: true,
	KindDR: true,
	KindHA: true,
}

// MaxLineBytes bounds one journal line, newline included. Append refuses a
// longer entry, and readers treat a longer line as damaged, so a corrupt file
// without newlines cannot make a reader hold it all in memory.
const MaxLineBytes = 1 << 20

// Entry is one journal line. Seq, Prev and Hash are assigned by Append; the
// caller fills the rest.
type Entry struct {
	Seq   uint64    `json:"seq"`  // 1, 2, 3, ... assigned by Append
	Time  time.Time `json:"time"` // controller time of the event, given by the caller
	Kind  string    `json:"kind"` // one of the Kind constants
	Fleet string    `json:"fleet,omitempty"`
	From  string    `json:"from,omitempty"` // command: mode names
	To    string    `json:"to,omitempty"`
	Count int       `json:"count,omitempty"`
	Rules []string  `json:"rules,omitempty"` // decision: rules fired
	// Inputs are, for a decision, the received signal values it decided
	// on (not fallbacks), by signal name, each with its sample time: a
	// restarted daemon resumes with those still within their max_age, as
	// old as they are, so it decides as the running one would have.
	Inputs map[string]Input `json:"inputs,omitempty"`
	Reason string           `json:"reason,omitempty"`
	Err    string           `json:"err,omitempty"` // ack: driver error, empty = accepted
	// Counts and KW are, for a state entry, the fleet's devices and kW per
	// mode name as commanded (the target once transitions land).
	Counts map[string]int     `json:"counts,omitempty"`
	KW     map[string]float64 `json:"kw,omitempty"`
	// Override is the operator's instruction, as the daemon's API took it.
	// It is stored compacted. DR is, for a dr entry, the event's
	// compliance record (JSON of dr.Record), also compacted.
	Override json.RawMessage `json:"override,omitempty"`
	DR       json.RawMessage `json:"dr,omitempty"`
	// Term is, with high availability, the leader's term (its etcd
	// election revision) the entry was written under; 0 without HA.
	// Append refuses an entry whose term is older than the newest the
	// journal has seen (ErrStaleTerm).
	Term int64  `json:"term,omitempty"`
	Prev string `json:"prev"` // hash of the previous entry; "" for seq 1
	Hash string `json:"hash"` // see the package comment; must stay the last field
}

// Input is one received signal value and when it was sampled.
type Input struct {
	Value float64   `json:"v"`
	Time  time.Time `json:"ts"`
}

// Recovery is what Open read back from an existing journal.
type Recovery struct {
	Entries   int              // valid entries read
	TornBytes int64            // bytes of an incomplete or corrupt last line that were truncated
	LastSeq   uint64           // 0 for an empty journal
	LastHash  string           // "" for an empty journal
	LastState map[string]Entry // per fleet: the last state entry, to resume from
	LastTime  time.Time        // time of the last entry
	// LastDecision is the last decision entry (Kind "" when none).
	LastDecision Entry
	// Term is the newest Entry.Term read back (0 when none).
	Term int64
}

// Errors returned by Open, Append, Verify and Export, checked with errors.Is.
var (
	// ErrLocked means another process (or another Open) holds the journal.
	ErrLocked = errors.New("locked by another process")
	// ErrCorrupt means a line before the last one is damaged: the history
	// is not trustworthy and is left untouched for the operator.
	ErrCorrupt = errors.New("journal corrupt")
	// ErrTorn means the last line is incomplete, as a crash mid-write leaves it.
	ErrTorn = errors.New("torn last line")
	// ErrClosed is returned by Append after Close.
	ErrClosed = errors.New("journal closed")
	// ErrStaleTerm is returned by Append for an entry whose term is older
	// than the newest one the journal has seen: a deposed leader's.
	ErrStaleTerm = errors.New("term older than the newest journalled")
)

// Journal appends entries to one journal file. It holds an exclusive flock
// on the file until Close. Its methods are safe for concurrent use.
type Journal struct {
	mu      sync.Mutex
	f       *os.File
	seq     uint64
	hash    string
	err     error // set when a write or fsync failed, until recover succeeds
	size    int64 // file size after the last fsync that succeeded
	path    string
	max     int64 // Options.MaxSegmentBytes
	nextSeg int   // number of the next rotated segment
	term    int64 // newest Entry.Term appended or read back
	closed  bool
	buf     bytes.Buffer
}

// Open opens or creates the journal at path (directories 0o750, file
// 0o640), takes an exclusive lock on it, reads it back and verifies the
// chain. An incomplete or unparsable last line, as a crash mid-write leaves
// it, is truncated away, reported in Recovery.TornBytes and logged once. A
// damaged line before the last one is an error wrapping ErrCorrupt, and
// nothing is changed: the operator inspects it with `switchd journal verify`
// and moves the damaged tail aside with `switchd journal repair` (Repair).
// A journal already open elsewhere is an error wrapping ErrLocked. Open logs
// only the truncation, on log as given (nil logs nothing).
func Open(path string, log *zap.Logger) (*Journal, Recovery, error) {
	return OpenWith(path, log, Options{})
}

// OpenWith is Open with options. With rotated segments (see Segments), they
// are read and verified first, oldest first, and the journal file must
// continue their chain; damage in a segment is an error wrapping ErrCorrupt
// naming the segment.
func OpenWith(path string, log *zap.Logger, o Options) (*Journal, Recovery, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, Recovery{}, fmt.Errorf("journal %q: %w", path, err)
	}
	// O_APPEND: every write lands at the end, whatever the offset.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, Recovery{}, fmt.Errorf("journal: %w", err)
	}
	rec, err := recoverFile(f, path, log)
	if err != nil {
		_ = f.Close() // also drops the lock
		return nil, Recovery{}, err
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, Recovery{}, fmt.Errorf("journal %q: %w", path, err)
	}
	nums, _, err := segmentNumbers(path)
	if err != nil {
		_ = f.Close()
		return nil, Recovery{}, err
	}
	next := 1
	if len(nums) > 0 {
		next = nums[len(nums)-1] + 1
	}
	return &Journal{f: f, seq: rec.LastSeq, hash: rec.LastHash, size: st.Size(), path: path, max: o.MaxSegmentBytes, nextSeg: next, term: rec.Term}, rec, nil
}

// recoverFile locks f, reads it back and truncates a torn tail.
func recoverFile(f *os.File, path string, log *zap.Logger) (Recovery, error) {
	// A flock belongs to the open file description, so a second Open fails
	// even within one process, and the kernel drops it when a process dies.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return Recovery{}, fmt.Errorf("journal %q: %w", path, ErrLocked)
		}
		return Recovery{}, fmt.Errorf("journal %q: lock: %w", path, err)
	}
	// The directory entry of a new file is durable only once the directory
	// is synced.
	if err := syncDir(filepath.Dir(path)); err != nil {
		return Recovery{}, fmt.Errorf("journal %q: %w", path, err)
	}
	rec := Recovery{LastState: map[string]Entry{}}
	note := func(e Entry) {
		rec.Entries++
		rec.LastTime = e.Time
		rec.Term = max(rec.Term, e.Term)
		switch e.Kind {
		case KindState:
			rec.LastState[e.Fleet] = e
		case KindDecision:
			rec.LastDecision = e
		}
	}
	segs, err := Segments(path)
	if err != nil {
		return Recovery{}, err
	}
	sc := newScanner(f)
	sc.seq, sc.hash, sc.anchor, _, err = scanSegments(segs, note)
	if err != nil {
		return Recovery{}, fmt.Errorf("journal %q: %w", path, err)
	}
	for {
		e, err := sc.next()
		if err == io.EOF {
			break
		}
		var le *LineError
		if errors.As(err, &le) && le.Torn {
			rec.TornBytes = sc.read - sc.good
			if err := f.Truncate(sc.good); err != nil {
				return Recovery{}, fmt.Errorf("journal %q: truncate torn tail: %w", path, err)
			}
			if err := f.Sync(); err != nil {
				return Recovery{}, fmt.Errorf("journal %q: truncate torn tail: %w", path, err)
			}
			log.Warn("journal torn tail truncated", zap.String("path", path), zap.Int("line", le.Line),
				zap.Int64("torn_bytes", rec.TornBytes), zap.String("reason", le.Msg))
			break
		}
		if err != nil {
			return Recovery{}, fmt.Errorf("journal %q: %w", path, err)
		}
		note(e)
	}
	rec.LastSeq, rec.LastHash = sc.seq, sc.hash
	return rec, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}

// Append assigns each entry its Seq, Prev and Hash (values the caller set
// there are ignored), writes all of them with one write call and returns
// after fsync: a nil error means they are durable. An invalid entry (unknown
// kind, a state entry without fleet, a value JSON cannot hold) is an error
// and nothing is written.
//
// A failed write or fsync (a full disk, an I/O error) fails the batch, and
// nothing of it counts as written. After a failed fsync the kernel may have
// dropped the data, so the file is not trusted past the last fsync that
// succeeded: every later Append first truncates the file back to that size
// and fsyncs it. While that fails, Append returns the error of the failed
// append again; once it succeeds the journal works again and the chain
// continues from the last durable entry, with no trace of the failed
// batches. A crash during Append may keep a prefix of the batch; Open then
// drops the incomplete line.
func (j *Journal) Append(entries ...Entry) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return ErrClosed
	}
	if j.err != nil {
		if !j.recover() {
			return j.err
		}
	}
	if len(entries) == 0 {
		return nil
	}
	term := j.term
	for i := range entries {
		if t := entries[i].Term; t != 0 && t < term {
			return fmt.Errorf("journal append: entry %d (%s) of term %d: %w (%d)", i, entries[i].Kind, t, ErrStaleTerm, term)
		}
		term = max(term, entries[i].Term)
	}
	j.buf.Reset()
	seq, prev := j.seq, j.hash
	for i := range entries {
		e := entries[i] // a copy: the caller's slice is not modified
		seq++
		e.Seq, e.Prev = seq, prev
		line, hash, err := encode(&e)
		if err != nil {
			return fmt.Errorf("journal append: entry %d (%s): %w", i, e.Kind, err)
		}
		j.buf.Write(line)
		prev = hash
	}
	if j.max > 0 && j.size > 0 && j.size+int64(j.buf.Len()) > j.max {
		j.rotate()
	}
	if _, err := j.f.Write(j.buf.Bytes()); err != nil {
		j.err = fmt.Errorf("journal append: %w", err)
		return j.err
	}
	if err := j.f.Sync(); err != nil {
		j.err = fmt.Errorf("journal append: fsync: %w", err)
		return j.err
	}
	j.seq, j.hash = seq, prev
	j.term = term
	j.size += int64(j.buf.Len())
	return nil
}

// recover makes the file end at the last durable entry again after a
// failed append: it truncates away what the failed batches may have left
// and fsyncs. It reports whether that worked; then j.err is cleared.
// Called with j.mu held.
func (j *Journal) recover() bool {
	if err := j.f.Truncate(j.size); err != nil {
		return false
	}
	if err := j.f.Sync(); err != nil {
		return false
	}
	j.err = nil
	return true
}

// Last returns the seq and hash of the last durable entry (0 and "" for an
// empty journal). Publishing the hash outside the journal anchors the chain.
func (j *Journal) Last() (seq uint64, hash string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.seq, j.hash
}

// Close releases the lock and closes the file. Later Appends return
// ErrClosed; a second Close does nothing.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil
	}
	j.closed = true
	if err := j.f.Close(); err != nil {
		return fmt.Errorf("journal close: %w", err)
	}
	return nil
}

// hashSuffix ends every line's payload before hashing.
const hashSuffix = `"hash":""}`

// encode validates e and returns its line, newline included, with e.Hash
// set, and the hash.
func encode(e *Entry) (line []byte, hash string, err error) {
	if !kinds[e.Kind] {
		return nil, "", fmt.Errorf("unknown kind %q", e.Kind)
	}
	if e.Kind == KindState && e.Fleet == "" {
		return nil, "", errors.New("state entry without fleet")
	}
	e.Hash = ""
	payload, err := json.Marshal(e)
	if err != nil {
		return nil, "", fmt.Errorf("encode: %w", err)
	}
	if !bytes.HasSuffix(payload, []byte(hashSuffix)) {
		// Only a change to the Entry struct can get here.
		return nil, "", errors.New("encode: hash is not the last field")
	}
	sum := sha256.Sum256(payload)
	hash = hex.EncodeToString(sum[:])
	e.Hash = hash
	// The line is the payload with the hash value filled in.
	line = make([]byte, 0, len(payload)+len(hash)+1)
	line = append(line, payload[:len(payload)-2]...) // up to the empty value's closing quote
	line = append(line, hash...)
	line = append(line, `"}`+"\n"...)
	if len(line) > MaxLineBytes {
		return nil, "", fmt.Errorf("line of %d bytes exceeds %d", len(line), MaxLineBytes)
	}
	return line, hash, nil
}
