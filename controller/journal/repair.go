package journal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// KindRepair records that `switchd journal repair` moved a corrupt tail
// aside; its Reason names the first bad line and the quarantine file.
const KindRepair = "repair"

func init() { kinds[KindRepair] = true }

// RepairResult is what Repair did.
type RepairResult struct {
	Line       int    // first bad line (1-based); 0 when the journal was intact
	Reason     string // what was wrong with it
	Kept       int    // good entries kept before it
	Quarantine string // the file the tail was moved to
	Bytes      int64  // bytes moved there
}

// Repair moves the damaged tail of the journal at path aside: from the
// first bad line (as Verify finds it) to the end, the bytes are copied
// unchanged into "<path>.quarantine-<now, UTC>", made durable, then cut
// from the journal, and a repair entry chained to the last good entry
// records it. Nothing is deleted: the quarantine file keeps the tail for
// inspection. An intact journal is left alone (Line 0). A journal held by
// a running daemon is an error wrapping ErrLocked. Each step is logged on
// log (nil logs nothing).
func Repair(path string, now time.Time, log *zap.Logger) (RepairResult, error) {
	if log == nil {
		log = zap.NewNop()
	}
	res, err := quarantineTail(path, now.UTC())
	if err != nil || res.Line == 0 {
		return res, err
	}
	log.Warn("journal tail quarantined", zap.String("path", path), zap.Int("line", res.Line),
		zap.String("reason", res.Reason), zap.Int("kept_entries", res.Kept),
		zap.String("quarantine", res.Quarantine), zap.Int64("bytes", res.Bytes))
	j, _, err := Open(path, log)
	if err != nil {
		return res, fmt.Errorf("journal %q: reopen after repair: %w", path, err)
	}
	err = j.Append(Entry{Time: now, Kind: KindRepair, Reason: fmt.Sprintf(
		"line %d and after (%d bytes) moved to %s: %s", res.Line, res.Bytes, filepath.Base(res.Quarantine), res.Reason)})
	if cerr := j.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return res, fmt.Errorf("journal %q: repair entry: %w", path, err)
	}
	log.Info("journal repaired", zap.String("path", path))
	return res, nil
}

// quarantineTail finds the first bad line under an exclusive lock and, if
// there is one, moves it and what follows into the quarantine file.
func quarantineTail(path string, now time.Time) (RepairResult, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return RepairResult{}, fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return RepairResult{}, fmt.Errorf("journal %q: %w (stop switchd first)", path, ErrLocked)
		}
		return RepairResult{}, fmt.Errorf("journal %q: lock: %w", path, err)
	}
	segs, err := Segments(path)
	if err != nil {
		return RepairResult{}, err
	}
	sc := newScanner(f)
	sc.seq, sc.hash, sc.anchor, _, err = scanSegments(segs, nil)
	if err != nil {
		// Only the journal file's tail is repaired; a rotated segment is
		// closed history, left for the operator to inspect.
		return RepairResult{}, fmt.Errorf("journal %q: damage in a rotated segment, not repaired automatically: %w", path, err)
	}
	var res RepairResult
	for {
		_, err := sc.next()
		if err == io.EOF {
			return RepairResult{}, nil
		}
		var le *LineError
		if errors.As(err, &le) {
			res.Line, res.Reason = le.Line, le.Msg
			break
		}
		if err != nil {
			return RepairResult{}, fmt.Errorf("journal %q: %w", path, err)
		}
		res.Kept++
	}
	res.Quarantine = path + ".quarantine-" + now.Format("20060102T150405Z")
	q, err := os.OpenFile(res.Quarantine, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return RepairResult{}, fmt.Errorf("journal %q: quarantine: %w", path, err)
	}
	defer q.Close()
	res.Bytes, err = io.Copy(q, io.NewSectionReader(f, sc.good, 1<<62))
	if err == nil {
		err = q.Sync()
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		return RepairResult{}, fmt.Errorf("journal %q: quarantine %s: %w", path, res.Quarantine, err)
	}
	// Only once the tail is safe elsewhere is it cut from the journal.
	if err := f.Truncate(sc.good); err != nil {
		return RepairResult{}, fmt.Errorf("journal %q: truncate: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return RepairResult{}, fmt.Errorf("journal %q: truncate: %w", path, err)
	}
	return res, nil
}
