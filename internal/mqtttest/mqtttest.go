// Package mqtttest runs a real Mosquitto broker for integration tests, on a
// free loopback port, and finds its command-line tools. Tests skip when
// Mosquitto is missing, unless SWITCHD_REQUIRE_MOSQUITTO=1 (CI), where they
// fail. Only tests import it.
package mqtttest

import (
	"bytes"
	"context"
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

// Wait bounds every wait on the broker.
const Wait = 15 * time.Second

// RequireTool returns the path of a Mosquitto program (mosquitto,
// mosquitto_pub, mosquitto_sub), skipping the test when it is missing
// unless SWITCHD_REQUIRE_MOSQUITTO=1.
func RequireTool(t testing.TB, name string) string {
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

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

// Buffer collects a process's output; safe for concurrent use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Broker is a Mosquitto broker run by a test on a loopback port.
type Broker struct {
	t    testing.TB
	bin  string
	port int
	conf string
	out  *Buffer
	cmd  *exec.Cmd
	done chan struct{}
}

// Start writes a config (a listener on a free loopback port, no
// persistence, anonymous access unless extra says otherwise; extra lines
// are appended) and starts the broker; it is killed at cleanup.
func Start(t testing.TB, extra ...string) *Broker {
	t.Helper()
	m := &Broker{t: t, bin: RequireTool(t, "mosquitto"), port: FreePort(t), out: &Buffer{}}
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
		m.Stop()
		if t.Failed() {
			t.Logf("mosquitto output:\n%s", m.out.String())
		}
	})
	m.Restart()
	return m
}

// Restart starts the broker (again, after Stop) on the same port and waits
// until it accepts connections.
func (m *Broker) Restart() {
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
		c, err := net.DialTimeout("tcp", m.Addr(), 100*time.Millisecond)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	}, Wait, 20*time.Millisecond, "mosquitto did not listen on %s:\n%s", m.Addr(), m.out.String())
}

// Stop kills the broker and waits for it to exit.
func (m *Broker) Stop() {
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	<-m.done
	m.cmd = nil
}

// Addr is the broker's host:port.
func (m *Broker) Addr() string { return "127.0.0.1:" + strconv.Itoa(m.port) }

// Port is the broker's port.
func (m *Broker) Port() int { return m.port }

// Output is what the broker has logged.
func (m *Broker) Output() string { return m.out.String() }

// Pub publishes one message with mosquitto_pub, QoS 1; args are extra
// mosquitto_pub flags (-r, -u USER ...).
func (m *Broker) Pub(topic, payload string, args ...string) {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	all := append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(m.port), "-q", "1", "-t", topic, "-m", payload}, args...)
	out, err := exec.CommandContext(ctx, RequireTool(m.t, "mosquitto_pub"), all...).CombinedOutput()
	require.NoError(m.t, err, "mosquitto_pub: %s", out)
}

// CheckNoLeaks fails the test if MQTT client or broker goroutines (paho,
// mochi) outlive it. Register it first, so that it runs after every other
// cleanup.
func CheckNoLeaks(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		var stacks string
		ok := false
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			buf := make([]byte, 1<<20)
			stacks = string(buf[:runtime.Stack(buf, true)])
			if !strings.Contains(stacks, "eclipse/paho.mqtt.golang") && !strings.Contains(stacks, "mochi-mqtt/server") {
				ok = true
				break
			}
		}
		require.True(t, ok, "leaked goroutines:\n%s", stacks)
	})
}
