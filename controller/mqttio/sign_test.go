package mqttio

import (
	"bytes"
	"crypto/ed25519"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/controller"
	"github.com/switchd/switchd/internal/mqtttest"
)

// newKey returns a fresh Ed25519 key pair.
func newKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return pub, priv
}

// signRaw signs ts and value, as written, for topic: a payload a
// hand-written publisher would send.
func signRaw(priv ed25519.PrivateKey, topic, ts, value string) string {
	sig := base64.StdEncoding.EncodeToString(ed25519.Sign(priv, SignedBytes(topic, ts, value)))
	return `{"ts":"` + ts + `","value":` + value + `,"sig":"` + sig + `"}`
}

func TestVerify(t *testing.T) {
	pub, priv := newKey(t)
	other, otherPriv := newKey(t)
	const topic = "dc1/signals/price"
	const ts = "2024-08-20T19:30:00Z"
	good := signRaw(priv, topic, ts, "42.5")
	tests := []struct {
		name    string
		key     ed25519.PublicKey
		topic   string
		payload string
		reason  string
	}{
		{"valid", pub, topic, good, ""},
		{"valid, value written with an exponent", pub, topic, signRaw(priv, topic, ts, "4.25e1"), ""},
		{"valid, from Sign", pub, topic, string(Sign(priv, topic, time.Date(2024, 8, 20, 19, 30, 0, 5, time.UTC), -12.75)), ""},
		{"bare number", pub, topic, "42.5", ReasonUnsigned},
		{"json without sig", pub, topic, `{"ts":"` + ts + `","value":42.5}`, ReasonUnsigned},
		{"signed for another topic", pub, topic, signRaw(priv, "dc1/signals/grid_load", ts, "42.5"), ReasonBadSignature},
		{"signed by another key", pub, topic, signRaw(otherPriv, topic, ts, "42.5"), ReasonBadSignature},
		{"checked against another key", other, topic, good, ReasonBadSignature},
		{"value altered", pub, topic, strings.Replace(good, "42.5", "42.6", 1), ReasonBadSignature},
		{"value rewritten, same number", pub, topic, strings.Replace(good, "42.5", "42.50", 1), ReasonBadSignature},
		{"ts altered", pub, topic, strings.Replace(good, "19:30:00Z", "19:31:00Z", 1), ReasonBadSignature},
		{"sig not base64", pub, topic, `{"ts":"` + ts + `","value":42.5,"sig":"!!"}`, ReasonMalformed},
		{"sig too short", pub, topic, `{"ts":"` + ts + `","value":42.5,"sig":"AAAA"}`, ReasonMalformed},
		{"sig a number", pub, topic, `{"ts":"` + ts + `","value":42.5,"sig":5}`, ReasonMalformed},
		{"ts missing", pub, topic, `{"value":42.5,"sig":"AAAA"}`, ReasonMalformed},
		{"value missing", pub, topic, `{"ts":"` + ts + `","sig":"AAAA"}`, ReasonMalformed},
		{"bad json", pub, topic, `{"ts":`, ReasonMalformed},
		{"too long", pub, topic, `{"ts":"` + strings.Repeat(" ", MaxPayloadBytes) + `"}`, ReasonMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sig, reason, err := Verify(tc.key, tc.topic, []byte(tc.payload))
			require.Equal(t, tc.reason, reason, "err %v", err)
			if tc.reason == "" {
				require.NoError(t, err)
				require.Len(t, sig, ed25519.SignatureSize)
			} else {
				require.Error(t, err)
			}
		})
	}
}

// newSignedSource returns an unconnected Source whose price signal is
// signed by pub, reporting to r.
func newSignedSource(t *testing.T, pub ed25519.PublicKey, clock switchd.Clock, r *recorder) *Source {
	t.Helper()
	sigs := testSignals("dc1/signals")
	sigs[switchd.SignalPrice].PublisherKey = pub
	s, err := NewSource(SourceOptions{
		MQTT:     config.MQTTConfig{Broker: "tcp://127.0.0.1:1"},
		Signals:  sigs,
		Clock:    clock,
		Logger:   zaptest.NewLogger(t),
		OnSample: r.sample,
		OnReject: r.reject,
	})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

// TestSourceSigned feeds a source whose price is signed: valid messages are
// accepted in order; unsigned, forged, other-topic, replayed and older ones
// are refused and counted with their reason; the last accepted message
// redelivered as retained (a resubscription) is dropped without a count.
func TestSourceSigned(t *testing.T) {
	pub, priv := newKey(t)
	_, forger := newKey(t)
	now := time.Date(2024, 8, 20, 19, 30, 0, 0, time.UTC)
	clock := &fakeClock{t: now}
	r := &recorder{}
	s := newSignedSource(t, pub, clock, r)
	const topic = "dc1/signals/price"
	at := func(d time.Duration) time.Time { return now.Add(d) }

	first := Sign(priv, topic, at(-2*time.Minute), 40)
	s.handle(topic, first)
	second := Sign(priv, topic, at(-time.Minute), 41)
	s.handle(topic, second)
	s.handleMessage(topic, second, true)                                 // redelivered retained: dropped silently
	s.handle(topic, second)                                              // replayed live
	s.handle(topic, first)                                               // older
	s.handle(topic, []byte("900"))                                       // unsigned bare number
	s.handle(topic, []byte(`{"ts":"2024-08-20T19:30:00Z","value":900}`)) // unsigned JSON
	s.handle(topic, Sign(forger, topic, now, 900))                       // forged
	s.handle(topic, Sign(priv, "dc1/signals/grid_load", now, 900))       // signed for another topic
	s.handle(topic, Sign(priv, topic, at(2*time.Minute), 900))           // beyond max_future (1m)
	s.handle(topic, Sign(priv, topic, at(-30*time.Second), 20001))       // out of range
	// A fast publisher clock (within max_future): clamped to now for the
	// controller, but the replay rule compares the ts as signed.
	fast := Sign(priv, topic, at(30*time.Second), 42)
	s.handle(topic, fast)
	clock.Set(at(10 * time.Second))
	s.handle(topic, fast)                                      // replayed after the clock moved on
	s.handle(topic, Sign(priv, topic, at(40*time.Second), 43)) // the publisher's next: accepted

	// An unsigned signal beside it still takes bare numbers.
	s.handle("dc1/signals/grid_load", []byte("50000"))

	require.Equal(t, []switchd.Sample{
		{Time: at(-2 * time.Minute), Signal: switchd.SignalPrice, Value: 40},
		{Time: at(-time.Minute), Signal: switchd.SignalPrice, Value: 41},
		{Time: now, Signal: switchd.SignalPrice, Value: 42},
		{Time: at(10 * time.Second), Signal: switchd.SignalPrice, Value: 43},
		{Time: at(10 * time.Second), Signal: switchd.SignalGridLoad, Value: 50000},
	}, r.Samples())
	p := switchd.SignalPrice
	require.Equal(t, []rejection{
		{p, ReasonReplayed}, {p, ReasonReplayed},
		{p, ReasonUnsigned}, {p, ReasonUnsigned},
		{p, ReasonBadSignature}, {p, ReasonBadSignature},
		{p, ReasonFuture}, {p, ReasonOutOfRange},
		{p, ReasonReplayed},
	}, r.Rejects())
}

// TestSignOpenSSL runs the README's openssl recipe (key pair, public key
// file, one signed message) and checks that switchd verifies its output
// with the public key file as publisher_key.
func TestSignOpenSSL(t *testing.T) {
	openssl := mqtttest.RequireTool(t, "openssl")
	if out, err := exec.Command(openssl, "pkeyutl", "-help").CombinedOutput(); !strings.Contains(string(out), "-rawin") {
		t.Skipf("openssl pkeyutl has no -rawin (OpenSSL 3 needed): %v", err)
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	dir := t.TempDir()
	// The recipe as the README shows it, with the date fixed.
	script := `set -eu
openssl genpkey -algorithm ed25519 -out publisher.key
openssl pkey -in publisher.key -pubout -out publisher.pub
topic=switchd/dc1/signals/price ts=2024-08-20T19:30:00.5Z value=42.5
printf '%s\n%s\n%s' "$topic" "$ts" "$value" >msg
sig=$(openssl pkeyutl -sign -rawin -inkey publisher.key -in msg | base64 -w0)
printf '{"ts":"%s","value":%s,"sig":"%s"}' "$ts" "$value" "$sig"
`
	for _, line := range []string{
		"openssl genpkey -algorithm ed25519 -out publisher.key",
		"openssl pkey -in publisher.key -pubout -out publisher.pub",
		`printf '%s\n%s\n%s' "$topic" "$ts" "$value" >msg`,
		"sig=$(openssl pkeyutl -sign -rawin -inkey publisher.key -in msg | base64 -w0)",
		`printf '{"ts":"%s","value":%s,"sig":"%s"}' "$ts" "$value" "$sig"`,
	} {
		require.True(t, strings.Contains(string(readme), line), "the README's recipe lacks %q: it differs from the one tested here", line)
	}
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(openssl)+":"+os.Getenv("PATH"))
	payload, err := cmd.Output()
	require.NoError(t, err)

	key, msg := config.ParsePublisherKey("publisher.pub", dir)
	require.Empty(t, msg)
	_, reason, err := Verify(key, "switchd/dc1/signals/price", payload)
	require.NoError(t, err, "payload %s", payload)
	require.Empty(t, reason)
	_, reason, _ = Verify(key, "switchd/dc1/signals/grid_load", payload)
	require.Equal(t, ReasonBadSignature, reason)
}

// TestSourceSignedMosquitto sends signed and unsigned prices through a real
// Mosquitto with mosquitto_pub: the signed one is accepted, the others are
// refused with their reasons, and a restart's retained redelivery of the
// accepted message is not counted as a replay.
func TestSourceSignedMosquitto(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	m := mqtttest.Start(t)
	pub, priv := newKey(t)
	_, forger := newKey(t)
	now := time.Date(2024, 8, 20, 19, 30, 0, 0, time.UTC)
	r := &recorder{}
	sigs := testSignals("dc1/signals")
	sigs[switchd.SignalPrice].PublisherKey = pub
	s, err := NewSource(SourceOptions{
		MQTT:     config.MQTTConfig{Broker: "tcp://" + m.Addr(), ClientID: "switchd-signed"},
		Signals:  sigs,
		Clock:    &fakeClock{t: now},
		Logger:   zaptest.NewLogger(t),
		OnSample: r.sample, OnReject: r.reject, OnConnection: r.connection,
	})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	require.NoError(t, s.Start(t.Context()))
	require.Eventually(t, s.Connected, waitMax, 5*time.Millisecond)

	const topic = "dc1/signals/price"
	good := Sign(priv, topic, now.Add(-time.Minute), 35)
	m.Pub(topic, string(good), "-r")
	require.Equal(t, 35.0, r.waitSamples(t, 1)[0].Value)
	m.Pub(topic, "5000")
	m.Pub(topic, string(Sign(forger, topic, now, 5000)))
	m.Pub(topic, string(Sign(priv, "dc1/signals/grid_load", now, 5000)))
	m.Pub(topic, string(good))
	p := switchd.SignalPrice
	want := []rejection{{p, ReasonUnsigned}, {p, ReasonBadSignature}, {p, ReasonBadSignature}, {p, ReasonReplayed}}
	require.Equal(t, want, r.waitRejects(t, 4))

	// Broker restart: the source resubscribes and gets the retained
	// message again, which is neither a new sample nor a replay.
	m.Stop()
	require.Eventually(t, func() bool { return !s.Connected() }, waitMax, 5*time.Millisecond)
	m.Restart()
	require.Eventually(t, s.Connected, waitMax, 10*time.Millisecond)
	m.Pub(topic, string(Sign(priv, topic, now, 36)))
	got := r.waitSamples(t, 2)
	require.Equal(t, 36.0, got[1].Value)
	require.Len(t, r.Samples(), 2)
	require.Equal(t, want, r.Rejects())
}

// TestSourceSignedForecast feeds a source whose price forecast is signed:
// the forecast object is the signed value; a signed one is accepted, an
// unsigned, forged, replayed or older one is refused and counted, and a
// bad forecast inside a good signature is still refused as such.
func TestSourceSignedForecast(t *testing.T) {
	pub, priv := newKey(t)
	_, forger := newKey(t)
	now := time.Date(2024, 8, 19, 18, 30, 0, 0, time.UTC)
	r := &recorder{}
	var got []*controller.Forecast
	cfg := forecastCfg
	cfg.PublisherKey = pub
	s, err := NewSource(SourceOptions{
		MQTT: config.MQTTConfig{Broker: "tcp://127.0.0.1:1"}, Signals: testSignals("dc1/signals"),
		Clock: &fakeClock{t: now}, Logger: zaptest.NewLogger(t), OnSample: r.sample, OnReject: r.reject,
		Forecast: cfg, OnForecast: func(f *controller.Forecast) { got = append(got, f) },
	})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	topic := cfg.Topic
	forecast := func(ts string, prices string) []byte {
		return []byte(`{"ts":"` + ts + `","start":"2024-08-19T18:00:00Z","interval":"15m","prices":` + prices + `}`)
	}
	first := SignJSON(priv, topic, now.Add(-time.Hour), forecast("2024-08-19T17:30:00Z", "[40, 41]"))
	s.handle(topic, first)
	s.handle(topic, forecast("2024-08-19T18:00:00Z", "[50, 51]"))                                           // unsigned
	s.handle(topic, SignJSON(forger, topic, now, forecast("2024-08-19T18:00:00Z", "[50, 51]")))             // forged
	s.handle(topic, SignJSON(priv, "dc1/signals/price", now, forecast("2024-08-19T18:00:00Z", "[50]")))     // other topic
	s.handle(topic, first)                                                                                  // replayed
	s.handle(topic, SignJSON(priv, topic, now.Add(-2*time.Hour), forecast("2024-08-19T18:00:00Z", "[50]"))) // older
	s.handle(topic, SignJSON(priv, topic, now, forecast("2024-08-19T18:00:00Z", "[50, 99999]")))            // out of range inside
	s.handleMessage(topic, first, true)                                                                     // retained redelivery: silent
	s.handle(topic, SignJSON(priv, topic, now, forecast("2024-08-19T18:00:00Z", "[50, 52]")))
	f := ForecastSignal
	require.Equal(t, []rejection{
		{f, ReasonUnsigned}, {f, ReasonBadSignature}, {f, ReasonBadSignature},
		{f, ReasonReplayed}, {f, ReasonReplayed}, {f, ReasonOutOfRange},
	}, r.Rejects())
	require.Len(t, got, 2)
	require.Equal(t, []float64{40, 41}, got[0].PricesUSDPerMWh)
	require.Equal(t, []float64{50, 52}, got[1].PricesUSDPerMWh)
}

// TestSourceSignedDR sends signed demand-response events through a real
// Mosquitto with mosquitto_pub: the event object is the signed value; a
// signed event reaches OnDR, unsigned, forged, other-topic and replayed
// ones are refused with their reasons.
func TestSourceSignedDR(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	m := mqtttest.Start(t)
	pub, priv := newKey(t)
	_, forger := newKey(t)
	r := &recorder{}
	s, err := NewSource(SourceOptions{
		MQTT:    config.MQTTConfig{Broker: "tcp://" + m.Addr(), ClientID: "switchd-dr-signed"},
		Signals: testSignals("dc1/signals"), Logger: zaptest.NewLogger(t),
		OnSample: func(switchd.Sample) {},
		DRTopic:  "dc1/signals/dr", DRPublisherKey: pub,
		OnDR: r.dr, OnDRReject: r.drReject,
	})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	require.NoError(t, s.Start(t.Context()))
	require.Eventually(t, s.Connected, waitMax, 5*time.Millisecond)

	const topic = "dc1/signals/dr"
	ev := []byte(`{"id":"ers-1","program":"ers","target_kw":900,"notice":"2024-08-20T14:00:00Z","start":"2024-08-20T14:30:00Z","end":"2024-08-20T15:30:00Z"}`)
	t0 := time.Date(2024, 8, 20, 14, 0, 0, 0, time.UTC)
	good := SignJSON(priv, topic, t0, ev)
	m.Pub(topic, string(ev))
	m.Pub(topic, string(SignJSON(forger, topic, t0, ev)))
	m.Pub(topic, string(SignJSON(priv, "dc1/signals/price", t0, ev)))
	m.Pub(topic, string(good))
	m.Pub(topic, string(good))
	m.Pub(topic, string(SignJSON(priv, topic, t0.Add(-time.Second), ev)))
	m.Pub(topic, string(SignJSON(priv, topic, t0.Add(time.Second), []byte(`{"id":"x"}`))))
	require.Eventually(t, func() bool {
		events, reasons := r.DR()
		return len(reasons) >= 6 && len(events) == 1
	}, waitMax, 5*time.Millisecond)
	events, reasons := r.DR()
	require.Equal(t, []string{ReasonUnsigned, ReasonBadSignature, ReasonBadSignature, ReasonReplayed, ReasonReplayed}, reasons[:5])
	require.NotEqual(t, ReasonReplayed, reasons[5], "a bad event inside a good signature is refused as a bad event")
	require.Equal(t, "ers-1", events[0].ID)
}

// BenchmarkHandleSigned is BenchmarkHandle for a signed price: parse,
// verify the Ed25519 signature, check, deliver.
func BenchmarkHandleSigned(b *testing.B) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(b, err)
	var accepted int
	start := time.Date(2024, 8, 20, 0, 0, 0, 0, time.UTC)
	sigs := testSignals("bench")
	sigs[switchd.SignalPrice].PublisherKey = pub
	s, err := NewSource(SourceOptions{
		MQTT:     config.MQTTConfig{Broker: "tcp://127.0.0.1:1"},
		Signals:  sigs,
		Clock:    &fakeClock{t: start.Add(365 * 24 * time.Hour)},
		Logger:   zap.NewNop(),
		OnSample: func(switchd.Sample) { accepted++ },
	})
	require.NoError(b, err)
	defer s.Close()
	payloads := make([][]byte, 1000)
	for i := range payloads {
		payloads[i] = Sign(priv, "bench/price", start.Add(time.Duration(i)*time.Second), 40+float64(i)/8)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%len(payloads) == 0 {
			s.mu.Lock()
			s.last = [switchd.NumSignals]time.Time{} // start the timestamps over
			s.signed = [switchd.NumSignals]signedLast{}
			s.mu.Unlock()
		}
		s.handle("bench/price", payloads[i%len(payloads)])
	}
	require.Equal(b, b.N, accepted)
}

// BenchmarkBrokerLogin measures checking one password of a mosquitto_passwd
// file ($7$, PBKDF2-SHA512 with its default 101 rounds): the embedded
// broker's cost per login.
func BenchmarkBrokerLogin(b *testing.B) {
	salt := make([]byte, 12)
	key, err := pbkdf2.Key(sha512.New, "s3cret", salt, 101, sha512.Size)
	require.NoError(b, err)
	hash := "$7$101$" + base64.StdEncoding.EncodeToString(salt) + "$" + base64.StdEncoding.EncodeToString(key)
	for b.Loop() {
		if !checkPassword(hash, []byte("s3cret")) {
			b.Fatal("password refused")
		}
	}
}

// FuzzVerify checks that Verify never panics, and that what it accepts
// carries a signature that verifies over topic, ts and value as sent.
func FuzzVerify(f *testing.F) {
	seed := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	pub := seed.Public().(ed25519.PublicKey)
	const topic = "dc1/signals/price"
	f.Add([]byte(Sign(seed, topic, time.Date(2024, 8, 20, 19, 30, 0, 0, time.UTC), 42.5)))
	f.Add(SignJSON(seed, topic, time.Date(2024, 8, 20, 19, 30, 0, 0, time.UTC), []byte(`{"a":[1,2]}`)))
	f.Add([]byte(`{"ts":"2024-08-20T19:30:00Z","value":42.5,"sig":"AAAA"}`))
	f.Add([]byte("42.5"))
	f.Fuzz(func(t *testing.T, payload []byte) {
		m, reason, err := verify(pub, topic, payload, MaxPayloadBytes)
		if err != nil {
			require.NotEmpty(t, reason)
			return
		}
		require.Empty(t, reason)
		var p signedPayload
		require.NoError(t, json.Unmarshal(bytes.TrimSpace(payload), &p))
		var ts string
		require.NoError(t, json.Unmarshal(p.TS, &ts))
		require.True(t, ed25519.Verify(pub, SignedBytes(topic, ts, string(m.value)), m.sig))
	})
}
