package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/switchd/switchd/controller/journal"
)

// journalCommands are the journal's subcommands: name, synopsis, summary.
var journalCommands = []struct{ name, synopsis, summary string }{
	{"verify", "journal verify FILE", "check the hash chain; name the first broken entry"},
	{"export", "journal export FILE [--from T] [--to T]", "write time,fleet,mode,kw CSV for demand-response settlement"},
	{"repair", "journal repair FILE", "move a corrupt tail aside (FILE.quarantine-TIME) and continue from the last good entry"},
	{"events", "journal events FILE [--format json]", "print each demand-response event's compliance record (also --events FILE)"},
}

// journalUsage lists the journal's subcommands.
func journalUsage() string {
	var b strings.Builder
	b.WriteString("usage:\n")
	for _, c := range journalCommands {
		fmt.Fprintf(&b, "  switchd %-40s %s\n", c.synopsis, c.summary)
	}
	b.WriteString("\nRun 'switchd journal <command> -h' for a command's flags.\n")
	return b.String()
}

// timeFlagHelp is the accepted forms of a date flag, for flag help.
const timeFlagHelp = "`T`: 2024-08-01 (that day's start), 2024-08-01T15:04, 2024-08-01 15:04 or RFC 3339 (2024-08-01T15:04:05-05:00); UTC unless T carries a zone"

func cmdJournal(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New("want journal verify FILE, journal repair FILE, journal events FILE or journal export FILE [--from T] [--to T]")}
	}
	if isHelp(args[0]) || args[0] == "help" {
		fmt.Fprint(stdout, journalUsage())
		return nil
	}
	sub, args := args[0], args[1:]
	if sub == "--events" || sub == "-events" {
		sub = "events"
	}
	if sub != "verify" && sub != "export" && sub != "repair" && sub != "events" {
		return usageError{fmt.Errorf("unknown journal command %q (want verify, repair, export or events)", sub)}
	}
	fs := newFlags("journal "+sub, stderr)
	var from, to *string
	if sub == "export" {
		from = fs.String("from", "", "export entries at or after "+timeFlagHelp)
		to = fs.String("to", "", "export entries before "+timeFlagHelp)
	}
	format := "text"
	if sub == "events" {
		fs.StringVar(&format, "format", "text", "output `format`: text or json")
	}
	// Accept the file before or after the flags.
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if file == "" && fs.NArg() > 0 {
		file = fs.Arg(0)
	}
	if file == "" {
		return usageError{errors.New("journal FILE is required")}
	}
	var t0, t1 time.Time
	if sub == "export" {
		var err error
		if t0, err = parseTimeFlag("from", *from); err != nil {
			return err
		}
		if t1, err = parseTimeFlag("to", *to); err != nil {
			return err
		}
		if !t0.IsZero() && !t1.IsZero() && !t0.Before(t1) {
			return usageError{fmt.Errorf("--from %s is not before --to %s: nothing to export", *from, *to)}
		}
	}
	if sub == "repair" {
		return journalRepair(file, stdout, stderr)
	}
	if sub == "events" {
		return journalEvents(file, format, stdout)
	}
	if sub == "verify" {
		// Rotated segments (FILE.000001, ...) are verified too, oldest
		// first; the error names the file and line.
		if _, err := os.Stat(file); err != nil {
			return err
		}
		n, err := journal.VerifyChain(file)
		if errors.Is(err, journal.ErrCorrupt) {
			return fmt.Errorf("%w (%d good entries before it); 'switchd journal repair %s' moves it and what follows aside", err, n, file)
		}
		if err != nil {
			return fmt.Errorf("%w (%d good entries before it)", err, n)
		}
		fmt.Fprintf(stdout, "%s: %d entries, chain intact\n", file, n)
		return nil
	}
	f, err := journal.OpenChain(file)
	if err != nil {
		return err
	}
	defer f.Close()
	return journal.Export(f, t0, t1, stdout)
}

// exitJournalCorrupt is the exit code of `switchd run` when its journal is
// corrupt: distinct, so that a service manager does not restart into the
// same failure (deploy/switchd.service: RestartPreventExitStatus).
const exitJournalCorrupt = 3

// journalCorruptHelp is what `switchd run` prints when the journal is
// corrupt, after the error naming the file and line.
func journalCorruptHelp(err error) string {
	var le *journal.LineError
	line := ""
	if errors.As(err, &le) {
		line = fmt.Sprintf(" from line %d", le.Line)
	}
	return "the journal is corrupt: switchd will not start on a history it cannot trust.\n" +
		"Inspect it with 'switchd journal verify FILE'; 'switchd journal repair FILE' moves the damaged part" + line +
		" aside into FILE.quarantine-TIME, keeps the entries before it and records the repair; then start again."
}

// journalRepair runs `switchd journal repair FILE`: a summary on stdout,
// and each step logged on stderr (JSON, as the daemon logs).
func journalRepair(file string, stdout, stderr io.Writer) error {
	log, err := newLogger("info", "json", stderr)
	if err != nil {
		return err
	}
	res, err := journal.Repair(file, time.Now(), log.Named("journal"))
	if err != nil {
		return err
	}
	if res.Line == 0 {
		fmt.Fprintf(stdout, "%s: chain intact, nothing to repair\n", file)
		return nil
	}
	fmt.Fprintf(stdout, "%s: line %d: %s\n%s: kept %d entries; moved line %d and after (%d bytes) to %s; repair entry appended\n",
		file, res.Line, res.Reason, file, res.Kept, res.Line, res.Bytes, res.Quarantine)
	return nil
}

// timeLayouts are the forms parseTime accepts, most specific first; those
// without a zone are read as UTC.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04",
	time.DateOnly,
}

// parseTime reads a date or time given on the command line: RFC 3339, the
// same without seconds, without a zone (then UTC), with a space instead of
// the T, or a bare date (its first instant, in UTC).
func parseTime(v string) (time.Time, error) {
	s := strings.TrimSpace(v)
	if len(s) > 10 && s[10] == ' ' {
		s = s[:10] + "T" + s[11:]
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	msg := "want 2024-08-01, 2024-08-01T15:04, 2024-08-01 15:04 or RFC 3339 such as 2024-08-01T15:04:05-05:00"
	// A date that is out of range (month 13, 31 June) says why.
	var pe *time.ParseError
	if _, err := time.Parse(time.DateOnly, s[:min(len(s), len(time.DateOnly))]); errors.As(err, &pe) && pe.Message != "" {
		msg = strings.TrimPrefix(pe.Message, ": ") + "; " + msg
	}
	return time.Time{}, fmt.Errorf("%q: %s", v, msg)
}

// parseTimeFlag is parseTime for flag --name; an empty value is the zero
// time (unbounded).
func parseTimeFlag(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := parseTime(v)
	if err != nil {
		return time.Time{}, usageError{fmt.Errorf("--%s: %w", name, err)}
	}
	return t, nil
}
