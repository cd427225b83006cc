package journal

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// crashEnv names the journal a helper process appends to.
const crashEnv = "SWITCHD_JOURNAL_CRASH_PATH"

// TestHelperProcess is not a test: TestCrashRecovery runs the test binary
// again with only this function and crashEnv set, and kills it.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("helper process for TestCrashRecovery")
	}
	j, _, err := Open(path, zap.NewNop())
	if err != nil {
		fmt.Printf("err %v\n", err)
		os.Exit(2)
	}
	// Batches of several large lines: a write of hundreds of kB spans many
	// pages, so SIGKILL can land in the middle of it and leave a torn tail.
	for i := range 100000 {
		batch := make([]Entry, 1+i%6)
		for k := range batch {
			batch[k] = Entry{
				Time: t0.Add(time.Duration(i) * time.Second), Kind: KindDecision,
				Rules: []string{"r" + strconv.Itoa(k)}, Reason: strings.Repeat("x", 20000+(i*7919+k*104729)%40000),
			}
		}
		if err := j.Append(batch...); err != nil {
			fmt.Printf("err %v\n", err)
			os.Exit(2)
		}
		seq, _ := j.Last()
		// Printed only once the batch is durable: the parent holds the
		// journal to every seq it reads here.
		fmt.Printf("ok %d\n", seq)
	}
	os.Exit(0)
}

func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	path := filepath.Join(t.TempDir(), "j.jsonl")
	var acked uint64
	var torn int64
	// The kill comes at varying delays after an acknowledgement, to land in
	// different phases of an Append.
	delays := []time.Duration{0, time.Millisecond, 3 * time.Millisecond, 7 * time.Millisecond}
	for round, delay := range delays {
		got := runAndKill(t, path, 30, delay)
		require.GreaterOrEqual(t, got, acked, "round %d", round)
		acked = got

		// Each child, and this final Open, recovers what the last one left.
		j, rec, err := Open(path, zaptest.NewLogger(t))
		require.NoError(t, err, "round %d", round)
		torn += rec.TornBytes
		t.Logf("round %d: killed %v after an ack: %d acknowledged, %d recovered, %d torn bytes", round, delay, got, rec.LastSeq, rec.TornBytes)
		require.GreaterOrEqual(t, rec.LastSeq, acked, "an acknowledged entry was lost")
		require.NoError(t, j.Close())
	}
	n, err := verifyFile(t, path)
	require.NoError(t, err)
	require.GreaterOrEqual(t, uint64(n), acked)
	t.Logf("%d entries, %d acknowledged by killed children, %d torn bytes truncated", n, acked, torn)
}

// runAndKill starts a helper process appending to path, SIGKILLs it after
// it acknowledged at least batches appends and delay passed, and returns the
// highest seq it acknowledged.
func runAndKill(t *testing.T, path string, batches int, delay time.Duration) uint64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	waited := false
	t.Cleanup(func() {
		if !waited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})

	// The reader ends when the child's stdout closes, that is when it died.
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var last uint64
	seen := 0
	parse := func(line string) {
		s, ok := strings.CutPrefix(line, "ok ")
		if !ok {
			t.Errorf("child: %s", line)
			return
		}
		seq, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Errorf("child: %s", line)
			return
		}
		last = seq
		seen++
	}
	deadline := time.After(60 * time.Second)
	for seen < batches {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("child exited after %d batches", seen)
			}
			parse(line)
		case <-deadline:
			require.NoError(t, cmd.Process.Kill())
			for range lines {
			}
			t.Fatalf("child acknowledged only %d batches in time", seen)
		}
	}
	time.Sleep(delay)
	require.NoError(t, cmd.Process.Kill())
	// Lines already in the pipe were printed before the kill: count them.
	for line := range lines {
		parse(line)
	}
	waited = true
	err = cmd.Wait()
	require.ErrorContains(t, err, "signal: killed")
	return last
}
