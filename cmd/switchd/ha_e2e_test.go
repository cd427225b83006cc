package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd/internal/etcdtest"
	"github.com/switchd/switchd/internal/mqtttest"
)

// haTTL is the lease TTL of the HA end-to-end test.
const haTTL = 3 * time.Second

// haInstance is one of the test's switchd processes.
type haInstance struct {
	name    string
	cmd     *exec.Cmd
	logs    *mqtttest.Buffer
	base    string // http://127.0.0.1:port
	journal string
}

type haState struct {
	Ready  bool `json:"ready"`
	Fleets []struct {
		Modes  map[string]int `json:"modes"`
		Moving int            `json:"moving"`
	} `json:"fleets"`
	Overrides []json.RawMessage `json:"overrides"`
	HA        *struct {
		Instance string `json:"instance"`
		Role     string `json:"role"`
		Term     int64  `json:"term"`
		Leader   string `json:"leader"`
	} `json:"ha"`
}

func (in *haInstance) state() *haState {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(in.base + "/api/v1/state")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var v haState
	if json.NewDecoder(resp.Body).Decode(&v) != nil || v.HA == nil {
		return nil
	}
	return &v
}

// TestHAFailover runs three switchd binaries for one site against a real
// etcd, a real Mosquitto and six fake LuxOS miners, then: SIGKILLs the
// leader (a new one is elected within 2 x the lease TTL and no miner is
// commanded because of the failover; then it sheds at a price spike);
// SIGSTOPs the new leader past its lease while the price drops (the third
// instance takes over and wakes the miners within 2 x TTL) and SIGCONTs it
// (nothing it sends reaches a miner, whatever it tries); finally the
// instances' journals are checked to hold one history: every accepted
// command batch carries a term, each term belongs to one instance, and
// terms do not overlap in time.
func TestHAFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	etcd := etcdtest.Start(t)
	broker := mqtttest.Start(t)
	dir := t.TempDir()
	bin := buildSwitchd(t)

	addrs, miner := luxosFakes(t, 40)
	commands := func() (n int) { // curtail sleep and wakeup, as received
		for i := range addrs {
			n += miner(i).Count("curtail")
		}
		return n
	}
	asleep := func() (n int) {
		for i := range addrs {
			if miner(i).Asleep() {
				n++
			}
		}
		return n
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(`fallbacks: {hashprice_usd_ph_day: 48}
fail_safe: {price: hold}
rules:
  - name: price-spike
    when: {price_above_usd_mwh: 1000}
    then: {force: {luxos: off}}
`), 0o600))

	var insts []*haInstance
	for _, name := range []string{"n1", "n2", "n3"} {
		hport := mqtttest.FreePort(t)
		site := fmt.Sprintf(`site: {name: hasite, timezone: UTC, power_cap_kw: 1000}
policy: policy.yaml
tick: 1s
mqtt: {broker: "tcp://127.0.0.1:%d", client_id: switchd-hasite-%s}
signals:
  price: {max_age: 1h}
http: {listen: "127.0.0.1:%d", token_env: SWITCHD_TOKEN}
journal: {path: %s/journal.log}
ha: {endpoints: [%q], name: %s, lease_ttl: %s}
fleets:
  - name: luxos
    kind: asic
    devices: [%s]
    driver: luxos
    settings: {timeout: 2s, grace: 3s}
    modes: {off: {power_kw: 0.02}, mining: {power_kw: 2.76, hashrate_ths: 120}}
    transitions: {off->mining: 1s, mining->off: 1s}
`, broker.Port(), name, hport, name, etcd.URL, name, haTTL, strings.Join(addrs, ", "))
		cfg := filepath.Join(dir, name+".yaml")
		require.NoError(t, os.WriteFile(cfg, []byte(site), 0o600))
		in := &haInstance{name: name, logs: &mqtttest.Buffer{}, base: fmt.Sprintf("http://127.0.0.1:%d", hport), journal: filepath.Join(dir, name, "journal.log")}
		in.cmd = exec.Command(bin, "run", "--config", cfg, "--log-level", "debug")
		in.cmd.Env = append(os.Environ(), "SWITCHD_TOKEN=ha-test-token-0123456789")
		in.cmd.Stdout, in.cmd.Stderr = in.logs, in.logs
		require.NoError(t, in.cmd.Start())
		t.Cleanup(func() {
			_ = in.cmd.Process.Signal(syscall.SIGCONT)
			_ = in.cmd.Process.Kill()
			_ = in.cmd.Wait()
			if t.Failed() {
				t.Logf("%s log:\n%s", in.name, in.logs.String())
			}
		})
		insts = append(insts, in)
	}
	publish := func(price string) {
		broker.Pub("switchd/hasite/signals/price", fmt.Sprintf(`{"ts":%q,"value":%s}`, time.Now().UTC().Format(time.RFC3339Nano), price), "-r")
	}
	// leader returns the one live instance that says it leads, and its term.
	leader := func(live []*haInstance) (*haInstance, int64) {
		var l *haInstance
		var term int64
		for _, in := range live {
			if s := in.state(); s != nil && s.HA.Role == "leader" {
				if l != nil {
					return nil, 0 // two say so: wait
				}
				l, term = in, s.HA.Term
			}
		}
		return l, term
	}
	steady := func(in *haInstance, mining int) bool {
		s := in.state()
		return s != nil && s.Ready && len(s.Fleets) == 1 && s.Fleets[0].Modes["mining"] == mining && s.Fleets[0].Moving == 0
	}

	publish("30")
	var l1 *haInstance
	var term1 int64
	require.Eventually(t, func() bool { l1, term1 = leader(insts); return l1 != nil }, 20*time.Second, 50*time.Millisecond, "a leader is elected")
	for _, in := range insts {
		require.Eventually(t, func() bool { return steady(in, 6) }, 20*time.Second, 50*time.Millisecond, "%s: mining on cheap power", in.name)
	}
	require.Zero(t, commands(), "nothing to command while mining pays")

	// Followers: ready, say so, and refuse overrides naming the leader.
	var rest []*haInstance
	for _, in := range insts {
		if in != l1 {
			rest = append(rest, in)
		}
	}
	for _, in := range rest {
		resp, err := http.Get(in.base + "/readyz")
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
		require.Contains(t, string(body), "follower")
		req, _ := http.NewRequest("POST", in.base+"/api/v1/override", strings.NewReader(`{"fleet":"luxos","mode":"off","duration":"10m"}`))
		req.Header.Set("Authorization", "Bearer ha-test-token-0123456789")
		req.Header.Set("Content-Type", "application/json")
		resp, err = http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusMisdirectedRequest, resp.StatusCode, string(body))
		require.Contains(t, string(body), l1.name)
	}

	// 1. SIGKILL the leader: a new one within 2 x TTL, no device flips.
	killed := time.Now()
	require.NoError(t, l1.cmd.Process.Signal(syscall.SIGKILL))
	var l2 *haInstance
	var term2 int64
	require.Eventually(t, func() bool { l2, term2 = leader(rest); return l2 != nil }, 2*haTTL, 20*time.Millisecond, "new leader within 2 x TTL of the SIGKILL")
	t.Logf("SIGKILL: %s elected %v after the kill (TTL %v), term %d -> %d", l2.name, time.Since(killed).Round(10*time.Millisecond), haTTL, term1, term2)
	require.Greater(t, term2, term1)
	time.Sleep(2 * time.Second) // two ticks of the new leader
	require.Zero(t, commands(), "no device commanded because of the failover")
	spike := time.Now()
	publish("5000")
	require.Eventually(t, func() bool { return commands() == len(addrs) }, 2*haTTL, 20*time.Millisecond, "the new leader sheds at the spike")
	t.Logf("new leader shed %v after the spike", time.Since(spike).Round(10*time.Millisecond))
	require.Eventually(t, func() bool { return asleep() == len(addrs) }, 10*time.Second, 50*time.Millisecond)

	// 2. SIGSTOP the leader past its lease while the price drops: the third
	// instance takes over and wakes the miners; the paused one, woken,
	// lands nothing.
	var l3 *haInstance
	for _, in := range rest {
		if in != l2 {
			l3 = in
		}
	}
	require.Eventually(t, func() bool { return steady(l3, 0) }, 10*time.Second, 50*time.Millisecond, "the follower saw the shed")
	stopped := time.Now()
	require.NoError(t, l2.cmd.Process.Signal(syscall.SIGSTOP))
	publish("30")
	require.Eventually(t, func() bool { return commands() == 2*len(addrs) }, 2*haTTL+time.Second, 20*time.Millisecond, "the new leader wakes the miners")
	took := time.Since(stopped)
	s3 := l3.state()
	require.NotNil(t, s3)
	require.Equal(t, "leader", s3.HA.Role)
	term3 := s3.HA.Term
	require.Greater(t, term3, term2)
	t.Logf("SIGSTOP: %s took over and commanded %v after the stop (TTL %v), term %d", l3.name, took.Round(10*time.Millisecond), haTTL, term3)
	require.Less(t, took, 2*haTTL, "a new leader commands within twice the lease TTL")
	require.Eventually(t, func() bool { return asleep() == 0 }, 10*time.Second, 50*time.Millisecond)
	switched := time.Now()

	require.NoError(t, l2.cmd.Process.Signal(syscall.SIGCONT))
	require.Eventually(t, func() bool {
		s := l2.state()
		return s != nil && s.HA.Role == "follower" && s.HA.Term == term3
	}, 10*time.Second, 50*time.Millisecond, "the woken ex-leader follows")
	time.Sleep(3 * time.Second) // ticks of both
	require.Equal(t, 2*len(addrs), commands(), "nothing from the old leader landed; no device flipped")
	require.Zero(t, asleep())
	t.Logf("woken ex-leader: %s", fencedMetric(t, l2))

	// 3. An operator's override survives a failover: set on the leader,
	// taken over by its successor, so the failover moves no miner.
	req, _ := http.NewRequest("POST", l3.base+"/api/v1/override", strings.NewReader(`{"fleet":"luxos","mode":"off","duration":"10m","reason":"ha test"}`))
	req.Header.Set("Authorization", "Bearer ha-test-token-0123456789")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(body))
	require.Eventually(t, func() bool { return asleep() == len(addrs) }, 10*time.Second, 50*time.Millisecond, "the override sheds")
	require.Equal(t, 3*len(addrs), commands())
	require.NoError(t, l3.cmd.Process.Signal(syscall.SIGKILL))
	require.Eventually(t, func() bool {
		s := l2.state()
		return s != nil && s.HA.Role == "leader" && len(s.Overrides) == 1
	}, 2*haTTL, 20*time.Millisecond, "%s leads with the override in force", l2.name)
	time.Sleep(3 * time.Second) // ticks of the new leader
	require.Equal(t, 3*len(addrs), commands(), "no miner woken by the failover: the override was taken over")
	require.Equal(t, len(addrs), asleep())

	// 4. The journals agree on one history.
	require.NoError(t, l2.cmd.Process.Signal(syscall.SIGTERM))
	_ = l2.cmd.Wait()
	_ = l3.cmd.Wait()
	type span struct {
		inst        string
		first, last time.Time
		batches     int
	}
	terms := map[int64]*span{}
	for _, in := range insts {
		for _, e := range readJournal(t, in.journal) {
			if e.Kind != "ack" || e.Err != "" {
				continue
			}
			require.NotZero(t, e.Term, "%s: accepted command without a term", in.name)
			sp := terms[e.Term]
			if sp == nil {
				sp = &span{inst: in.name, first: e.Time}
				terms[e.Term] = sp
			}
			require.Equal(t, sp.inst, in.name, "term %d acted on by two instances", e.Term)
			sp.last = e.Time
			sp.batches++
			if in == l2 {
				require.True(t, e.Time.Before(switched), "%s: a command accepted after it lost the term", in.name)
			}
		}
	}
	var order []int64
	for term := range terms {
		order = append(order, term)
	}
	sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })
	for i := 1; i < len(order); i++ {
		a, b := terms[order[i-1]], terms[order[i]]
		require.False(t, b.first.Before(a.last), "term %d (%s) began before term %d (%s) ended", order[i], b.inst, order[i-1], a.inst)
	}
	require.Equal(t, []int64{term2, term3}, order, "the two commanding terms")
	for _, term := range order {
		t.Logf("term %d: %s, %d accepted batch(es) %s .. %s", term, terms[term].inst, terms[term].batches, terms[term].first.Format("15:04:05.000"), terms[term].last.Format("15:04:05.000"))
	}
}

// fencedMetric reads switchd_ha_fenced_total from an instance.
func fencedMetric(t *testing.T, in *haInstance) string {
	resp, err := http.Get(in.base + "/metrics")
	if err != nil {
		return "metrics unavailable: " + err.Error()
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var got []string
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "switchd_ha_fenced_total{") {
			got = append(got, sc.Text())
		}
	}
	if len(got) == 0 {
		return "no fence check failed (switchd_ha_fenced_total absent)"
	}
	return strings.Join(got, ", ")
}

type haEntry struct {
	Time time.Time `json:"time"`
	Kind string    `json:"kind"`
	Err  string    `json:"err"`
	Term int64     `json:"term"`
}

func readJournal(t *testing.T, path string) []haEntry {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []haEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e haEntry
		require.NoError(t, json.Unmarshal(sc.Bytes(), &e))
		out = append(out, e)
	}
	require.NoError(t, sc.Err())
	return out
}
