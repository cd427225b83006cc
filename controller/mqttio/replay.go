package mqttio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/trace"
)

// Publisher is a small MQTT client that publishes signal messages, for
// `switchd replay` and the daemon's demo mode.
type Publisher struct {
	client    mqtt.Client
	startOnce sync.Once
	closeOnce sync.Once
	connectTk mqtt.Token
}

// NewPublisher builds a publisher for the broker of cfg. Its client id is
// cfg.ClientID (or "switchd") plus "-replay-" and a random suffix, so it
// never collides with the daemon's own client on the same broker. It reads
// the TLS files if any but does no network I/O.
func NewPublisher(cfg config.MQTTConfig) (*Publisher, error) {
	base := cfg.ClientID
	if base == "" {
		base = "switchd"
	}
	co, err := clientOptions(cfg, base+"-replay-"+randomSuffix())
	if err != nil {
		return nil, fmt.Errorf("mqtt publisher: %w", err)
	}
	return &Publisher{client: mqtt.NewClient(co)}, nil
}

// Start connects and waits until connected or ctx is done. A broker that is
// down is retried in the background until then; Close stops trying.
func (p *Publisher) Start(ctx context.Context) error {
	started := false
	p.startOnce.Do(func() {
		started = true
		p.connectTk = p.client.Connect()
	})
	if !started {
		return errors.New("mqtt publisher: started twice")
	}
	select {
	case <-p.connectTk.Done():
		if err := p.connectTk.Error(); err != nil {
			return fmt.Errorf("mqtt publisher: connect: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("mqtt publisher: connect: %w", ctx.Err())
	}
}

// Publish publishes payload on topic with QoS 1, not retained, and waits for
// the broker's acknowledgement or ctx.
func (p *Publisher) Publish(ctx context.Context, topic string, payload []byte) error {
	if err := checkTopicName(topic); err != nil {
		return fmt.Errorf("mqtt publish: %w", err)
	}
	return waitTokens(ctx, p.client.Publish(topic, 1, false, payload))
}

// Close disconnects and waits for paho's connection loops to end. It may be
// called more than once, and without Start.
func (p *Publisher) Close() {
	p.closeOnce.Do(func() {
		p.startOnce.Do(func() {})
		if p.connectTk != nil {
			waitDisconnected(p.client, p.connectTk)
		}
	})
}

// waitTokens waits for every token, at most publishTimeout each, or ctx;
// it returns the first error.
func waitTokens(ctx context.Context, tokens ...mqtt.Token) error {
	timeout := time.NewTimer(publishTimeout)
	defer timeout.Stop()
	for _, tk := range tokens {
		select {
		case <-tk.Done():
			if err := tk.Error(); err != nil {
				return fmt.Errorf("mqtt publish: %w", err)
			}
		case <-timeout.C:
			return fmt.Errorf("mqtt publish: no acknowledgement within %v", publishTimeout)
		case <-ctx.Done():
			return fmt.Errorf("mqtt publish: %w", ctx.Err())
		}
	}
	return nil
}

// Replay publishes src's rows as signal messages, for `switchd replay` and
// the demo. For each row, each signal sampled at that row (not a value
// carried forward by trace.Merge) is published as {"ts": ..., "value": ...}
// to prefix+"/"+signal name, QoS 1, not retained; the row's messages are
// acknowledged before the next row goes out, which keeps them in order and
// bounds what is in flight.
//
// Pacing: row r goes out at (r.Time - first row's time) / speed after the
// first row, in wall time; speed <= 0 (or +Inf) means as fast as the broker
// acknowledges.
//
// rewrite stamps ts with the wall-clock time of publishing instead of the
// trace time. A live daemon needs that: it rejects a ts ahead of its clock
// ("future"), treats one older than max_age as stale and applies the
// fail-safe, and, when a looping demo starts the trace over, would reject
// every value as older than the last one ("out_of_order"). Without rewrite
// the messages carry history, which is what a consumer recording a trace
// wants.
//
// Replay returns how many rows had at least one message published; it stops
// with ctx's error when ctx is done, or the first read or publish error.
func Replay(ctx context.Context, p *Publisher, src trace.Source, prefix string, speed float64, rewrite bool) (int, error) {
	if math.IsNaN(speed) {
		return 0, errors.New("replay: speed is NaN")
	}
	prefix = strings.TrimSuffix(prefix, "/")
	var topics [switchd.NumSignals]string
	for _, sig := range switchd.AllSignals {
		topics[sig] = prefix + "/" + sig.String()
		if err := checkTopicName(topics[sig]); err != nil {
			return 0, fmt.Errorf("replay: prefix %q: %w", prefix, err)
		}
	}
	var (
		rows      int
		first     time.Time
		wallStart time.Time
		timer     *time.Timer
		tokens    []mqtt.Token
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return rows, fmt.Errorf("replay: %w", err)
		}
		row, err := src.Next()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return rows, fmt.Errorf("replay: %w", err)
		}
		if first.IsZero() {
			first, wallStart = row.Time, time.Now()
		} else if speed > 0 {
			if wait := time.Until(wallStart.Add(paceOffset(row.Time.Sub(first), speed))); wait > 0 {
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				select {
				case <-timer.C:
				case <-ctx.Done():
					return rows, fmt.Errorf("replay: %w", ctx.Err())
				}
			}
		}
		tokens = tokens[:0]
		for _, sig := range switchd.AllSignals {
			if !row.Has[sig] || !(row.At[sig].IsZero() || row.At[sig].Equal(row.Time)) {
				continue
			}
			v := row.Values[sig]
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return rows, fmt.Errorf("replay: row at %s: %s is not finite", row.Time.Format(time.RFC3339), sig)
			}
			ts := row.Time
			if rewrite {
				ts = time.Now()
			}
			// paho keeps the slice until the message is written, so each
			// message has its own.
			tokens = append(tokens, p.client.Publish(topics[sig], 1, false, appendPayload(nil, ts, v)))
		}
		if len(tokens) == 0 {
			continue
		}
		if err := waitTokens(ctx, tokens...); err != nil {
			return rows, fmt.Errorf("replay: row at %s: %w", row.Time.Format(time.RFC3339), err)
		}
		rows++
	}
}

// paceOffset is trace offset d scaled by 1/speed, saturated instead of
// overflowing for a slow replay of a long trace.
func paceOffset(d time.Duration, speed float64) time.Duration {
	f := float64(d) / speed
	if f >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(f)
}

// appendPayload appends the JSON payload {"ts": ts, "value": v}.
// strconv's shortest 'g' form is valid JSON for finite values.
func appendPayload(b []byte, ts time.Time, v float64) []byte {
	b = append(b, `{"ts":"`...)
	b = ts.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","value":`...)
	b = strconv.AppendFloat(b, v, 'g', -1, 64)
	return append(b, '}')
}
