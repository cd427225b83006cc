// Package etcdtest starts a real etcd server on loopback for tests.
package etcdtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/switchd/switchd/internal/mqtttest"
)

// Server is a running single-member etcd.
type Server struct {
	URL string // client URL, http://127.0.0.1:<port>
	cmd *exec.Cmd
	out *mqtttest.Buffer
}

// Start runs etcd with its data in a temporary directory on free loopback
// ports, waits until it accepts clients, and stops it when the test ends.
// It skips the test when etcd is not installed, unless
// SWITCHD_REQUIRE_ETCD=1.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		if os.Getenv("SWITCHD_REQUIRE_ETCD") == "1" {
			t.Fatalf("etcd not found and SWITCHD_REQUIRE_ETCD=1: %v", err)
		}
		t.Skipf("etcd not found (install etcd-server): %v", err)
	}
	cport, pport := mqtttest.FreePort(t), mqtttest.FreePort(t)
	client := fmt.Sprintf("http://127.0.0.1:%d", cport)
	peer := fmt.Sprintf("http://127.0.0.1:%d", pport)
	s := &Server{URL: client, out: &mqtttest.Buffer{}}
	s.cmd = exec.Command(bin, "--name", "t", "--data-dir", t.TempDir(),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "t="+peer, "--log-level", "warn", "--logger", "zap")
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		if t.Failed() {
			t.Logf("etcd output:\n%s", s.out.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", cport), time.Second)
		if err == nil {
			_ = c.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd did not listen on %s: %v\n%s", client, err, s.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
