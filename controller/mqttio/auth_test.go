package mqttio

import (
	"encoding/base64"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/switchd/switchd/internal/mqtttest"
)

// writePasswordFile makes a password file with mosquitto_passwd (the tool
// operators use), hashing with algo ("sha512-pbkdf2" or "sha512").
func writePasswordFile(t *testing.T, algo string, users map[string]string) string {
	t.Helper()
	tool := mqtttest.RequireTool(t, "mosquitto_passwd")
	path := filepath.Join(t.TempDir(), "users")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	for u, pw := range users {
		out, err := exec.Command(tool, "-H", algo, "-b", path, u, pw).CombinedOutput()
		require.NoError(t, err, "mosquitto_passwd: %s", out)
	}
	return path
}

func TestPasswordFile(t *testing.T) {
	for _, algo := range []string{"sha512-pbkdf2", "sha512"} {
		t.Run(algo, func(t *testing.T) {
			path := writePasswordFile(t, algo, map[string]string{"meter": "s3cret", "scada": "other pw"})
			users, err := ReadPasswordFile(path)
			require.NoError(t, err)
			require.Len(t, users, 2)
			require.True(t, checkPassword(users["meter"], []byte("s3cret")))
			require.False(t, checkPassword(users["meter"], []byte("s3cret ")))
			require.False(t, checkPassword(users["meter"], []byte("other pw")))
			require.True(t, checkPassword(users["scada"], []byte("other pw")))
		})
	}
	_, err := parseHash(dummyHash)
	require.NoError(t, err, "the dummy hash costs what a real check costs")

	dir := t.TempDir()
	for _, tc := range []struct{ name, data, want string }{
		{"plain text", "meter:s3cret\n", ":1: user \"meter\": not a mosquitto_passwd hash"},
		{"no colon", "# users\n\nmeter\n", ":3: want user:hash"},
		{"twice", "a:$6$AAAA$" + b64(64) + "\na:$6$AAAA$" + b64(64) + "\n", `:2: user "a" appears twice`},
		{"short key", "a:$6$AAAA$AAAA\n", ":1: user \"a\": bad key in hash"},
		{"huge iterations", "a:$7$99999999$AAAA$" + b64(64) + "\n", ":1: user \"a\": bad iteration count"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			require.NoError(t, os.WriteFile(path, []byte(tc.data), 0o600))
			_, err := ReadPasswordFile(path)
			require.ErrorContains(t, err, path+tc.want)
		})
	}
}

// b64 is the base64 of n zero bytes.
func b64(n int) string {
	return mustB64(make([]byte, n))
}

// client is a paho client of a test, with what it received.
type client struct {
	mqtt.Client
	mu  sync.Mutex
	got []string // "topic payload"
}

func (c *client) received() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.got...)
}

// dial connects a paho client to the broker on port; err is the refusal.
func dial(t *testing.T, port, id, user, pw string) (*client, error) {
	t.Helper()
	c := &client{}
	o := mqtt.NewClientOptions().AddBroker("tcp://127.0.0.1:" + port).SetClientID(id).
		SetUsername(user).SetPassword(pw).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(5 * time.Second)
	o.SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.got = append(c.got, m.Topic()+" "+string(m.Payload()))
	})
	c.Client = mqtt.NewClient(o)
	tk := c.Connect()
	require.True(t, tk.WaitTimeout(waitMax))
	if err := tk.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, nil
}

// TestBrokerAuth runs the embedded broker beyond loopback with a password
// file made by mosquitto_passwd: anonymous clients, wrong passwords and
// another client taking switchd's ID are refused; a signal publisher may
// publish its signal topics and nothing else, and read nothing; a state
// reader may read the state topics and publish nothing.
func TestBrokerAuth(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	file := writePasswordFile(t, "sha512-pbkdf2", map[string]string{"meter": "meter-pw", "scada": "scada-pw", "nobody": "nobody-pw"})
	b, err := StartBrokerWith("0.0.0.0:0", zaptest.NewLogger(t), BrokerOptions{
		ReservedClientID: "switchd-s", ReservedUsername: "switchd-s", ReservedPassword: "internal-pw",
		PasswordFile: file,
		Accounts: map[string]Account{
			"meter": {Publish: []string{"s/signals/price", "s/signals/grid_load"}},
			"scada": {Read: []string{"s/state"}},
		},
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	_, port, err := net.SplitHostPort(b.Addr())
	require.NoError(t, err)

	for _, tc := range []struct{ name, id, user, pw string }{
		{"anonymous", "anon", "", ""},
		{"wrong password", "m1", "meter", "wrong"},
		{"unknown user", "m2", "mallory", "meter-pw"},
		{"switchd's id with a user's password", "switchd-s", "meter", "meter-pw"},
		{"switchd's user with a wrong password", "m3", "switchd-s", "meter-pw"},
	} {
		_, err := dial(t, port, tc.id, tc.user, tc.pw)
		require.Error(t, err, tc.name)
	}

	sw, err := dial(t, port, "switchd-s", "switchd-s", "internal-pw")
	require.NoError(t, err)
	require.True(t, sw.Subscribe("#", 1, nil).WaitTimeout(waitMax))
	meter, err := dial(t, port, "meter-1", "meter", "meter-pw")
	require.NoError(t, err)
	scada, err := dial(t, port, "scada-1", "scada", "scada-pw")
	require.NoError(t, err)
	nobody, err := dial(t, port, "nobody-1", "nobody", "nobody-pw")
	require.NoError(t, err, "a user without an acl entry logs in, with no rights")

	st := scada.Subscribe("s/state/#", 1, nil)
	require.True(t, st.WaitTimeout(waitMax))
	require.Equal(t, byte(1), st.(*mqtt.SubscribeToken).Result()["s/state/#"], "scada reads the state")
	for _, c := range []*client{meter, scada, nobody} {
		for _, filter := range []string{"s/signals/price", "#", "s/+"} {
			tk := c.Subscribe(filter, 1, nil)
			require.True(t, tk.WaitTimeout(waitMax))
			require.Equal(t, byte(0x80), tk.(*mqtt.SubscribeToken).Result()[filter], "subscription to %s refused", filter)
		}
	}

	pub := func(c *client, topic, payload string) {
		require.True(t, c.Publish(topic, 0, false, payload).WaitTimeout(waitMax))
	}
	// Refused publishes first, then an allowed one on the same connection:
	// the broker keeps a connection's order, so once the allowed one has
	// arrived, the refused ones would have too.
	pub(meter, "s/state", "forged state")
	pub(meter, "s/signals/ai_demand", "1")
	pub(scada, "s/signals/price", "9999")
	pub(nobody, "s/signals/price", "9999")
	pub(scada, "s/state/x", "scada writes")
	pub(meter, "s/signals/price", "42")
	pub(sw, "s/state", "state 1")
	require.Eventually(t, func() bool { return len(sw.received()) >= 2 && len(scada.received()) >= 1 }, 3*time.Second, 5*time.Millisecond, "switchd got %q, scada %q", sw.received(), scada.received())
	pub(nobody, "s/signals/grid_load", "1")
	pub(meter, "s/signals/grid_load", "50000")
	// switchd, subscribed to #, also gets its own state back.
	require.Eventually(t, func() bool { return len(sw.received()) >= 3 }, waitMax, 5*time.Millisecond)
	require.ElementsMatch(t, []string{"s/signals/price 42", "s/state state 1", "s/signals/grid_load 50000"}, sw.received())
	require.Equal(t, []string{"s/state state 1"}, scada.received())
}

// TestBrokerAnonymousBeyondLoopback starts the broker on every interface
// with anonymous access asked for: it starts, says so loudly, and lets an
// anonymous client in.
func TestBrokerAnonymousBeyondLoopback(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	core, logs := observer.New(zapcore.WarnLevel)
	b, err := StartBrokerWith("0.0.0.0:0", zap.New(core), BrokerOptions{AllowAnonymous: true})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	require.Equal(t, 1, logs.FilterMessageSnippet("OPEN TO THE NETWORK").Len())
	_, port, err := net.SplitHostPort(b.Addr())
	require.NoError(t, err)
	_, err = dial(t, port, "anon", "", "")
	require.NoError(t, err)

	_, err = StartBrokerWith("127.0.0.1:0", zap.NewNop(), BrokerOptions{PasswordFile: filepath.Join(t.TempDir(), "none")})
	require.ErrorContains(t, err, "password file")
}

func mustB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestBrokerPasswordFileReload adds a user to the password file of a
// running broker (as mosquitto_passwd does, rewriting the file): the new
// user logs in without a restart, and a file broken meanwhile keeps the
// users last read.
func TestBrokerPasswordFileReload(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	tool := mqtttest.RequireTool(t, "mosquitto_passwd")
	file := writePasswordFile(t, "sha512-pbkdf2", map[string]string{"meter": "meter-pw"})
	b, err := StartBrokerWith("127.0.0.1:0", zaptest.NewLogger(t), BrokerOptions{PasswordFile: file})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	_, port, err := net.SplitHostPort(b.Addr())
	require.NoError(t, err)

	_, err = dial(t, port, "c1", "iso", "iso-pw")
	require.Error(t, err, "not a user yet")
	_, err = dial(t, port, "c2", "", "")
	require.Error(t, err, "a password file on loopback also refuses anonymous clients")
	out, err := exec.Command(tool, "-b", file, "iso", "iso-pw").CombinedOutput()
	require.NoError(t, err, "mosquitto_passwd: %s", out)
	_, err = dial(t, port, "c3", "iso", "iso-pw")
	require.NoError(t, err, "added while running")

	require.NoError(t, os.WriteFile(file, []byte("garbage\n"), 0o600))
	_, err = dial(t, port, "c4", "meter", "meter-pw")
	require.NoError(t, err, "a broken file keeps the users last read")
}
