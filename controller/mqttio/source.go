package mqttio

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/zap"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/controller"
	"github.com/switchd/switchd/dr"
)

// NoSignal is the signal passed to OnReject for a message on a topic that
// no signal is read from (reason unknown_topic). Label it "unknown" in
// metrics.
const NoSignal = switchd.Signal(switchd.NumSignals)

// rejectLogInterval is the least time between two rejection log lines of
// one signal: a producer gone mad must not flood the log.
const rejectLogInterval = 10 * time.Second

// maxLoggedPayload is how much of a rejected payload a log line quotes.
const maxLoggedPayload = 64

// SourceOptions configures a Source.
type SourceOptions struct {
	MQTT config.MQTTConfig
	// Signals[s].Topic is where signal s is read from; "" means not
	// subscribed. Min, Max and MaxFuture are checked on every message
	// (see Check).
	Signals [switchd.NumSignals]config.SignalConfig
	// Clock gives the arrival time of a message: the time of a bare number
	// and the reference of the future rule. The wall clock when nil.
	Clock  switchd.Clock
	Logger *zap.Logger // zap.NewNop() when nil
	// OnSample receives accepted samples, each signal's in non-decreasing
	// time order (an equal time is a redelivered duplicate). Required when
	// a topic is set.
	OnSample func(switchd.Sample)
	// OnReject is told of every rejected payload (for the metric); sig is
	// NoSignal for reason unknown_topic. Optional.
	OnReject func(sig switchd.Signal, reason string)
	// OnConnection is told when the source is subscribed after a
	// (re)connection (true) and when that connection is lost (false).
	// Optional.
	OnConnection func(connected bool)
	// Forecast.Topic, when set, is where the price forecast is read from
	// (ParseForecast); OnForecast receives each accepted one (required
	// then, and bound like OnSample). Rejections go to OnReject with
	// ForecastSignal.
	Forecast   config.SignalConfig
	OnForecast func(*controller.Forecast)
	// DRTopic, when set, is read for demand-response events (dr.go):
	// each valid one goes to OnDR (required then), each invalid one to
	// OnDRReject with its reason (optional).
	DRTopic    string
	OnDR       func(dr.Event)
	OnDRReject func(reason string)
	// DRPublisherKey, when set, makes every event come signed by it, in
	// the envelope of signed signals (SignJSON) with their replay rule.
	DRPublisherKey ed25519.PublicKey
}

// Source receives signal values from MQTT and publishes state on the same
// connection. Messages are handled in the order the broker delivers them.
// The callbacks of SourceOptions are called from paho's goroutines but never
// concurrently with each other, and never after Close has returned. They
// must be quick and must not block or call the Source: OnSample runs on
// the goroutine that reads the connection (store the value and, to wake a
// loop, do a non-blocking send).
type Source struct {
	opts   SourceOptions
	log    *zap.Logger
	clock  switchd.Clock
	topics map[string]switchd.Signal // topic -> signal, fixed at construction
	subs   map[string]byte           // topic -> QoS, for SubscribeMultiple
	client mqtt.Client

	connected atomic.Bool
	health    health
	startOnce sync.Once
	closeOnce sync.Once
	connectTk mqtt.Token // set by Start, read by Close after startOnce

	done chan struct{} // closed by Close: ends subscription retries

	mu     sync.Mutex // serialises message handling and callbacks
	closed bool
	last   [switchd.NumSignals]time.Time // ts of the last accepted value
	// logs limits rejection log lines per signal; index NoSignal is for
	// unknown topics, ForecastSignal for the price forecast.
	logs         [switchd.NumSignals + 2]rejectLog
	lastForecast time.Time // ts of the last accepted forecast
	dr           drInput
	// signed[s] is the last accepted message of a signal with a publisher
	// key: its ts as signed (not clamped) and its signature;
	// signedForecast that of a signed price forecast.
	signed         [switchd.NumSignals]signedLast
	signedForecast signedLast
	signedDR       signedLast
}

// signedLast is what the replay rule of a signed input remembers.
type signedLast struct {
	ts  time.Time
	sig []byte
}

// rejectLog is the log rate limit state of one signal.
type rejectLog struct {
	at         time.Time // when the last line was written
	suppressed int       // rejections not logged since
}

// warn writes msg with fields, the payload (cut to maxLoggedPayload) and
// how many rejections went unlogged since the last line, unless a line was
// written less than rejectLogInterval before now: then it only counts one
// more suppressed.
func (l *rejectLog) warn(log *zap.Logger, now time.Time, msg string, payload []byte, fields ...zap.Field) {
	if !l.at.IsZero() && now.Sub(l.at) < rejectLogInterval {
		l.suppressed++
		return
	}
	if len(payload) > maxLoggedPayload {
		payload = payload[:maxLoggedPayload]
	}
	log.Warn(msg, append(fields, zap.ByteString("payload", payload), zap.Int("suppressed", l.suppressed))...)
	l.at = now
	l.suppressed = 0
}

// wallClock is the Clock used when none is given.
type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// NewSource checks the options and builds the MQTT client. It reads the TLS
// files if any but does no network I/O: Start connects.
func NewSource(o SourceOptions) (*Source, error) {
	s := &Source{
		opts:   o,
		log:    o.Logger,
		clock:  o.Clock,
		topics: make(map[string]switchd.Signal),
		subs:   make(map[string]byte),
		done:   make(chan struct{}),
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.clock == nil {
		s.clock = wallClock{}
	}
	var errs []error
	for _, sig := range switchd.AllSignals {
		cfg := o.Signals[sig]
		if cfg.Topic == "" {
			continue
		}
		if err := checkSignalConfig(cfg); err != nil {
			errs = append(errs, fmt.Errorf("signal %s: %w", sig, err))
			continue
		}
		if prev, dup := s.topics[cfg.Topic]; dup {
			errs = append(errs, fmt.Errorf("signal %s: topic %q is already the topic of %s", sig, cfg.Topic, prev))
			continue
		}
		s.topics[cfg.Topic] = sig
		s.subs[cfg.Topic] = 1
	}
	if t := o.DRTopic; t != "" {
		if err := checkTopicName(t); err != nil {
			errs = append(errs, fmt.Errorf("demand response: %w", err))
		} else if sig, dup := s.topics[t]; dup {
			errs = append(errs, fmt.Errorf("demand response: topic %q is already the topic of %s", t, sig))
		} else if o.OnDR == nil {
			errs = append(errs, errors.New("demand response: no OnDR callback"))
		} else {
			s.subs[t] = 1
		}
	}
	if len(s.topics) > 0 && o.OnSample == nil {
		errs = append(errs, errors.New("no OnSample callback"))
	}
	if err := s.addForecast(o); err != nil {
		errs = append(errs, err)
	}
	co, err := clientOptions(o.MQTT, clientIDOrRandom(o.MQTT.ClientID, "switchd"))
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("mqtt source: %w", err)
	}
	if u, err := brokerURL(o.MQTT); err == nil {
		s.health.broker = u
	}
	s.health.since, s.health.nextLog = time.Now(), unreachableFirst
	co.SetConnectionAttemptHandler(func(_ *url.URL, tc *tls.Config) *tls.Config {
		s.health.attempt()
		return tc
	})
	co.SetOnConnectHandler(s.onConnect)
	co.SetConnectionLostHandler(s.onConnectionLost)
	// Subscriptions are exact topics, so only a broker bug or a topic that
	// differs from ours in a way paho's matcher ignores lands here.
	co.SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
		s.handleMessage(m.Topic(), m.Payload(), m.Retained())
	})
	s.client = mqtt.NewClient(co)
	s.log = s.log.With(zap.String("client_id", co.ClientID))
	return s, nil
}

// checkSignalConfig checks what the source needs of a subscribed signal.
func checkSignalConfig(cfg config.SignalConfig) error {
	if err := checkTopicName(cfg.Topic); err != nil {
		return err
	}
	if math.IsNaN(cfg.Min) || math.IsNaN(cfg.Max) || cfg.Min > cfg.Max {
		return fmt.Errorf("bad plausible range [%v, %v]", cfg.Min, cfg.Max)
	}
	if cfg.MaxFuture < 0 {
		return fmt.Errorf("negative max future %v", cfg.MaxFuture)
	}
	return nil
}

// Start connects in the background and returns at once: a broker that is
// down is retried every few seconds, and OnConnection(true) tells when the
// source is subscribed. It fails only if ctx is already done or on a second
// Start or a Start after Close; the connection outlives ctx, Close ends it.
func (s *Source) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mqtt source: start: %w", err)
	}
	started, closed := false, false
	s.startOnce.Do(func() {
		started = true
		s.mu.Lock()
		closed = s.closed
		s.mu.Unlock()
		if !closed {
			s.connectTk = s.client.Connect()
			go s.watch()
		}
	})
	if !started {
		s.mu.Lock()
		closed = s.closed
		s.mu.Unlock()
	}
	switch {
	case closed:
		return errors.New("mqtt source: start after close")
	case !started:
		return errors.New("mqtt source: started twice")
	}
	return nil
}

// onConnect subscribes to every signal topic after each (re)connection: the
// session is clean, so the broker forgot earlier subscriptions. paho calls
// it in its own goroutine, so waiting for the SUBACK here is fine. The
// source counts as connected only once every subscription is granted.
func (s *Source) onConnect(c mqtt.Client) {
	if len(s.subs) > 0 && !s.subscribe(c) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// The connection may have dropped while subscribing; then the lost
	// handler has run or will run, and reporting "up" would be wrong.
	if s.closed || !c.IsConnectionOpen() {
		return
	}
	s.connected.Store(true)
	down, tries, wasLogged := s.health.connected(time.Now())
	fields := []zap.Field{zap.String("broker", s.health.broker.Redacted()), zap.Int("subscribed", len(s.subs))}
	if wasLogged {
		fields = append(fields, zap.Duration("was_down_for", down.Round(time.Second)), zap.Int("attempts", tries))
	}
	s.log.Info("mqtt connected", fields...)
	if s.opts.OnConnection != nil {
		s.opts.OnConnection(true)
	}
}

// subscribe subscribes to every signal topic, retrying while the connection
// is up and the source open: paho calls onConnect once per connection, so
// giving up on a SUBACK that timed out would leave a connected source deaf.
// A refusal by the broker (an ACL) is final for this connection and
// logged as an error.
func (s *Source) subscribe(c mqtt.Client) bool {
	var retry *time.Timer
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	for {
		tk := c.SubscribeMultiple(s.subs, func(_ mqtt.Client, m mqtt.Message) {
			s.handleMessage(m.Topic(), m.Payload(), m.Retained())
		})
		timeout := time.NewTimer(subscribeTimeout)
		var err error
		select {
		case <-tk.Done():
			err = tk.Error()
		case <-timeout.C:
			err = fmt.Errorf("no acknowledgement within %v", subscribeTimeout)
		case <-s.done:
			timeout.Stop()
			return false
		}
		timeout.Stop()
		if err == nil {
			refused := false
			if st, ok := tk.(*mqtt.SubscribeToken); ok {
				for topic, code := range st.Result() {
					if code >= 0x80 {
						refused = true
						s.log.Error("subscription refused by broker", zap.String("topic", topic),
							zap.String("signal", s.topicSignal(topic)), zap.Uint8("return_code", code))
					}
				}
			}
			return !refused
		}
		if !c.IsConnectionOpen() {
			return false // the next onConnect subscribes
		}
		s.log.Warn("subscribe failed", zap.Error(err), zap.Duration("retry_in", subscribeRetry))
		if retry == nil {
			retry = time.NewTimer(subscribeRetry)
		} else {
			retry.Reset(subscribeRetry)
		}
		select {
		case <-retry.C:
		case <-s.done:
			return false
		}
	}
}

// onConnectionLost is paho's lost-connection handler; paho reconnects by
// itself.
func (s *Source) onConnectionLost(_ mqtt.Client, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A connection whose subscriptions were refused was never reported up,
	// so its loss is not reported either.
	was := s.connected.Swap(false)
	if s.closed {
		return
	}
	s.health.lost(time.Now(), err)
	s.log.Warn("mqtt connection lost: reconnecting, and resubscribing on reconnect", zap.Error(err))
	if was && s.opts.OnConnection != nil {
		s.opts.OnConnection(false)
	}
}

// handle parses, checks and delivers one live (not retained) message.
func (s *Source) handle(topic string, payload []byte) {
	s.handleMessage(topic, payload, false)
}

// handleMessage parses, checks and delivers one message; retained is the
// MQTT retain flag as delivered, set only for a message the broker kept
// from before the subscription. It holds the lock the whole way so the
// out-of-order rule and the order of OnSample calls agree even if paho
// ever calls it concurrently.
//
// Two rules keep a message from lying about its age. A retained bare
// number carries no time, and its arrival says only when switchd
// subscribed, so it is dated just past the signal's max_age: shown, but
// stale, never a reason to leave the fail-safe (see RetainedUntimed). A
// ts ahead of the local clock (within max_future) is clamped to the
// arrival, so that it cannot make later, true values look out of order.
func (s *Source) handleMessage(topic string, payload []byte, retained bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if topic == s.opts.DRTopic && topic != "" {
		s.handleDR(topic, payload, retained)
		return
	}
	sig, ok := s.topics[topic]
	if !ok {
		s.reject(NoSignal, topic, payload, ReasonUnknownTopic, errors.New("no signal is read from this topic"))
		return
	}
	if sig == ForecastSignal {
		s.handleForecast(topic, payload, retained)
		return
	}
	now := s.clock.Now()
	key := s.opts.Signals[sig].PublisherKey
	var signature []byte
	if key != nil {
		var reason string
		var err error
		if signature, reason, err = Verify(key, topic, payload); err != nil {
			s.reject(sig, topic, payload, reason, err)
			return
		}
	}
	value, ts, reason, err := ParsePayload(payload, now)
	if err != nil {
		s.reject(sig, topic, payload, reason, err)
		return
	}
	if key != nil {
		if drop, err := s.signed[sig].replayed(ts, signature, retained); drop {
			if err != nil {
				s.reject(sig, topic, payload, ReasonReplayed, err)
			}
			return
		}
	}
	untimed := retained && !HasTimestamp(payload)
	if untimed {
		ts = RetainedUntimed(now, s.opts.Signals[sig].MaxAge)
		if !s.last[sig].IsZero() && ts.Before(s.last[sig]) {
			// Redelivered on a resubscription while a newer value is held:
			// nothing to learn from it, and not a producer's fault.
			return
		}
	}
	if reason, ok := Check(s.opts.Signals[sig], value, ts, now, s.last[sig]); !ok {
		s.reject(sig, topic, payload, reason, checkError(s.opts.Signals[sig], reason, value, ts, now, s.last[sig]))
		return
	}
	signedTS := ts
	ts = ClampFuture(ts, now)
	if untimed {
		s.log.Debug("retained value without ts counts as stale", zap.String("signal", sig.String()), zap.Float64("value", value))
	}
	s.last[sig] = ts
	if key != nil {
		s.signed[sig] = signedLast{ts: signedTS, sig: signature}
	}
	s.opts.OnSample(switchd.Sample{Time: ts, Signal: sig, Value: value})
}

// replayed applies the replay rule of a signed input to a message whose
// signature verified: its ts must be strictly after that of the last
// accepted message, as signed (a ts clamped to the arrival would let a
// replay of a fast-clocked message through). drop says to drop the
// message, and err, when not nil, why (count it as ReasonReplayed). The one
// silent drop is the last accepted message itself redelivered as retained
// on a resubscription: the broker, not a publisher, sent it again.
func (last signedLast) replayed(ts time.Time, signature []byte, retained bool) (drop bool, err error) {
	switch {
	case last.ts.IsZero() || ts.After(last.ts):
		return false, nil
	case retained && bytes.Equal(signature, last.sig):
		return true, nil
	}
	return true, fmt.Errorf("ts %s is not after the last accepted %s", ts.Format(time.RFC3339Nano), last.ts.Format(time.RFC3339Nano))
}

// checkError explains a Check rejection for the log.
func checkError(cfg config.SignalConfig, reason string, value float64, ts, now, last time.Time) error {
	switch reason {
	case ReasonOutOfRange:
		return fmt.Errorf("value %v outside [%v, %v]", value, cfg.Min, cfg.Max)
	case ReasonNonFinite:
		return fmt.Errorf("value %v is not finite", value)
	case ReasonFuture:
		return fmt.Errorf("ts %s is %v ahead of the local clock", ts.Format(time.RFC3339Nano), ts.Sub(now))
	case ReasonOutOfOrder:
		return fmt.Errorf("ts %s is before the last accepted %s", ts.Format(time.RFC3339Nano), last.Format(time.RFC3339Nano))
	}
	return errors.New(reason)
}

// reject counts a rejection and logs it, at most one line per signal per
// rejectLogInterval; the next line says how many were not logged. Called
// with s.mu held.
func (s *Source) reject(sig switchd.Signal, topic string, payload []byte, reason string, err error) {
	if s.opts.OnReject != nil {
		s.opts.OnReject(sig, reason)
	}
	s.logs[sig].warn(s.log, s.clock.Now(), "signal payload rejected", payload,
		zap.String("signal", signalName(sig)),
		zap.String("topic", topic),
		zap.String("reason", reason),
		zap.Error(err))
}

// Publish publishes payload on topic with QoS 1 and waits for the broker's
// acknowledgement, at most a few seconds. It fails at once while the
// connection is down instead of queueing: state is published again on the
// next tick, and a stale queued state is worth nothing. Safe for concurrent
// use.
func (s *Source) Publish(topic string, payload []byte, retained bool) error {
	if err := checkTopicName(topic); err != nil {
		return fmt.Errorf("mqtt publish: %w", err)
	}
	if !s.client.IsConnectionOpen() {
		return fmt.Errorf("mqtt publish %s: %w", topic, mqtt.ErrNotConnected)
	}
	tk := s.client.Publish(topic, 1, retained, payload)
	if !tk.WaitTimeout(publishTimeout) {
		return fmt.Errorf("mqtt publish %s: no acknowledgement within %v", topic, publishTimeout)
	}
	if err := tk.Error(); err != nil {
		return fmt.Errorf("mqtt publish %s: %w", topic, err)
	}
	return nil
}

// Connected reports whether the source is connected and subscribed.
func (s *Source) Connected() bool { return s.connected.Load() }

// Close disconnects and waits for paho's connection loops to end (at most
// about 15 s while a reconnection back-off is sleeping, at once otherwise).
// No callback runs after Close returns. Close may be called more than once,
// and without Start.
func (s *Source) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.connected.Store(false)
		s.mu.Unlock()
		close(s.done)
		// Start after this point sees closed and does not connect; one that
		// ran before has set connectTk, which startOnce makes visible.
		s.startOnce.Do(func() {})
		if s.connectTk != nil {
			waitDisconnected(s.client, s.connectTk)
		}
	})
}
