package mqttagent

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Copied from controller/mqttio/helpers_test.go: find and run a real
// Mosquitto on a loopback port.

// waitMax bounds every wait on the network in these tests.
const waitMax = 15 * time.Second

// checkNoLeaks fails the test if paho goroutines outlive it. Register it
// first so that it runs after every other cleanup.
func checkNoLeaks(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		var stacks string
		ok := false
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			buf := make([]byte, 1<<20)
			stacks = string(buf[:runtime.Stack(buf, true)])
			if !strings.Contains(stacks, "eclipse/paho.mqtt.golang") {
				ok = true
				break
			}
		}
		require.True(t, ok, "leaked goroutines:\n%s", stacks)
	})
}

// requireTool returns the path of a Mosquitto tool, skipping the test when
// it is missing unless SWITCHD_REQUIRE_MOSQUITTO=1.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil && name == "mosquitto" {
		// Debian installs the broker in /usr/sbin, often not on a user's PATH.
		if _, serr := os.Stat("/usr/sbin/mosquitto"); serr == nil {
			path, err = "/usr/sbin/mosquitto", nil
		}
	}
	if err != nil {
		if os.Getenv("SWITCHD_REQUIRE_MOSQUITTO") == "1" {
			t.Fatalf("%s not found and SWITCHD_REQUIRE_MOSQUITTO=1: %v", name, err)
		}
		t.Skipf("%s not found (install mosquitto and mosquitto-clients): %v", name, err)
	}
	return path
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

// lockedBuffer collects a process's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// mosquitto is a Mosquitto broker run by a test on a loopback port.
type mosquitto struct {
	t    testing.TB
	bin  string
	port int
	conf string
	out  *lockedBuffer
	cmd  *exec.Cmd
	done chan struct{}
}

// startMosquitto writes a config (listener on a free loopback port, no
// persistence, anonymous access unless extra says otherwise) and starts
// the broker; it is killed at cleanup.
func startMosquitto(t testing.TB, extra ...string) *mosquitto {
	t.Helper()
	m := &mosquitto{t: t, bin: requireTool(t, "mosquitto"), port: freePort(t), out: &lockedBuffer{}}
	lines := []string{
		fmt.Sprintf("listener %d 127.0.0.1", m.port),
		"persistence false",
		"log_dest stderr",
	}
	hasAnon := false
	for _, e := range extra {
		hasAnon = hasAnon || strings.HasPrefix(e, "allow_anonymous")
	}
	if !hasAnon {
		lines = append(lines, "allow_anonymous true")
	}
	// Started as root, Mosquitto drops to user "mosquitto", which cannot
	// read files in the test's private temporary directory; staying the
	// current user avoids that (the setting is ignored for non-root).
	if u, err := user.Current(); err == nil {
		lines = append(lines, "user "+u.Username)
	}
	lines = append(lines, extra...)
	m.conf = filepath.Join(t.TempDir(), "mosquitto.conf")
	require.NoError(t, os.WriteFile(m.conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	t.Cleanup(func() {
		m.stop()
		if t.Failed() {
			t.Logf("mosquitto output:\n%s", m.out.String())
		}
	})
	m.start()
	return m
}

// start runs the broker and waits until it accepts connections.
func (m *mosquitto) start() {
	m.t.Helper()
	require.Nil(m.t, m.cmd, "mosquitto already running")
	m.cmd = exec.Command(m.bin, "-c", m.conf)
	m.cmd.Stdout, m.cmd.Stderr = m.out, m.out
	require.NoError(m.t, m.cmd.Start())
	m.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(m.cmd, m.done)
	require.Eventually(m.t, func() bool {
		select {
		case <-m.done:
			return false
		default:
		}
		c, err := net.DialTimeout("tcp", m.addr(), 100*time.Millisecond)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	}, waitMax, 20*time.Millisecond, "mosquitto did not listen on %s:\n%s", m.addr(), m.out.String())
}

// stop kills the broker and waits for it to exit.
func (m *mosquitto) stop() {
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	<-m.done
	m.cmd = nil
}

func (m *mosquitto) addr() string { return "127.0.0.1:" + strconv.Itoa(m.port) }
