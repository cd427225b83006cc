package mqttio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/controller"
)

// ForecastSignal is the signal passed to OnReject for a rejected price
// forecast payload: the forecast is not one of the scalar signals. Label
// it "price_forecast" (config.ForecastKey) in metrics.
const ForecastSignal = switchd.Signal(switchd.NumSignals + 1)

// MaxForecastPayloadBytes is the longest forecast payload ParseForecast
// reads: room for controller.MaxForecastIntervals prices of a dozen
// characters each, and nothing like the megabytes a broken producer could
// send.
const MaxForecastPayloadBytes = 64 << 10

// forecastPayload is the JSON form of a price forecast. Fields are raw so a
// wrong type is told apart from a missing field.
type forecastPayload struct {
	TS       json.RawMessage   `json:"ts"`
	Start    json.RawMessage   `json:"start"`
	Interval json.RawMessage   `json:"interval"`
	Prices   []json.RawMessage `json:"prices"`
}

// ParseForecast parses and checks a price forecast payload, a JSON object:
//
//	{"ts": "2024-08-19T13:30:00-05:00", "start": "2024-08-20T00:00:00-05:00",
//	 "interval": "1h", "prices": [31.5, 29.8, ...]}
//
// ts is when it was published (RFC 3339 with a UTC offset; its age runs
// from here), start the start of the first interval, interval the length of
// every interval (a Go duration string such as "15m" or "1h", or a number of
// seconds, from controller.MinForecastInterval to MaxForecastInterval), and
// prices one USD/MWh price per interval (at most
// controller.MaxForecastIntervals). Every field is required and no other is
// allowed: a bare array is refused, because its start would have to be
// guessed, and a forecast shifted by an interval is worse than none.
//
// Every price must be a finite number within [cfg.Min, cfg.Max]; ts must
// not be more than cfg.MaxFuture after now nor before lastAccepted (the ts
// of the last forecast accepted). On failure reason is a Reason constant
// and err says what is wrong; it never panics. Staleness (max_age) is
// judged by the controller at each tick.
func ParseForecast(data []byte, cfg config.SignalConfig, now, lastAccepted time.Time) (f *controller.Forecast, reason string, err error) {
	if len(data) > MaxForecastPayloadBytes {
		return nil, ReasonMalformed, fmt.Errorf("payload of %d bytes, want at most %d", len(data), MaxForecastPayloadBytes)
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return nil, ReasonMalformed, errors.New(`want a JSON object {"ts", "start", "interval", "prices"}`)
	}
	var p forecastPayload
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, ReasonMalformed, fmt.Errorf("decode json: %w", err)
	}
	if dec.More() {
		return nil, ReasonMalformed, errors.New("data after the JSON object")
	}
	f = &controller.Forecast{}
	if f.Issued, err = parseTS("ts", p.TS); err != nil {
		return nil, ReasonMalformed, err
	}
	if f.Start, err = parseTS("start", p.Start); err != nil {
		return nil, ReasonMalformed, err
	}
	if f.Interval, err = parseInterval(p.Interval); err != nil {
		return nil, ReasonMalformed, err
	}
	switch n := len(p.Prices); {
	case p.Prices == nil:
		return nil, ReasonMalformed, errors.New(`missing "prices"`)
	case n == 0:
		return nil, ReasonMalformed, errors.New(`"prices" is empty`)
	case n > controller.MaxForecastIntervals:
		return nil, ReasonMalformed, fmt.Errorf("%d prices, want at most %d", n, controller.MaxForecastIntervals)
	}
	f.PricesUSDPerMWh = make([]float64, len(p.Prices))
	for k, raw := range p.Prices {
		v, reason, err := parseJSONNumber(raw)
		if err != nil {
			return nil, reason, fmt.Errorf("prices[%d]: %w", k, err)
		}
		if v < cfg.Min || v > cfg.Max {
			return nil, ReasonOutOfRange, fmt.Errorf("prices[%d] = %v is outside [%v, %v]", k, v, cfg.Min, cfg.Max)
		}
		f.PricesUSDPerMWh[k] = v
	}
	if err := f.Validate(cfg.Min, cfg.Max); err != nil {
		return nil, ReasonMalformed, err // interval bounds; the rest was checked above
	}
	switch {
	case f.Issued.After(now.Add(cfg.MaxFuture)):
		return nil, ReasonFuture, fmt.Errorf("ts %s is %v ahead of the local clock", f.Issued.Format(time.RFC3339), f.Issued.Sub(now))
	case !lastAccepted.IsZero() && f.Issued.Before(lastAccepted):
		return nil, ReasonOutOfOrder, fmt.Errorf("ts %s is before the last accepted %s", f.Issued.Format(time.RFC3339), lastAccepted.Format(time.RFC3339))
	}
	return f, "", nil
}

// parseTS parses a required RFC 3339 time field.
func parseTS(name string, raw json.RawMessage) (time.Time, error) {
	if raw == nil {
		return time.Time{}, fmt.Errorf("missing %q", name)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return time.Time{}, fmt.Errorf("%s: want an RFC 3339 string, got %.40s", name, raw)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: want RFC 3339 with a UTC offset: %w", name, err)
	}
	return t, nil
}

// parseInterval parses the interval field: a duration string or a number
// of seconds.
func parseInterval(raw json.RawMessage) (time.Duration, error) {
	if raw == nil {
		return 0, errors.New(`missing "interval"`)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("interval: %w", err)
		}
		return d, nil
	}
	if !isJSONNumber(bytes.TrimSpace(raw)) {
		return 0, fmt.Errorf("interval: want a duration such as \"15m\" or a number of seconds, got %.40s", raw)
	}
	sec, err := strconv.ParseFloat(string(bytes.TrimSpace(raw)), 64)
	if err != nil || sec <= 0 || sec > controller.MaxForecastInterval.Seconds() {
		return 0, fmt.Errorf("interval: %.40s seconds is outside %s to %s", raw, controller.MinForecastInterval, controller.MaxForecastInterval)
	}
	return time.Duration(sec * float64(time.Second)), nil
}

// addForecast registers the forecast topic, if any, among the source's
// subscriptions.
func (s *Source) addForecast(o SourceOptions) error {
	cfg := o.Forecast
	if cfg.Topic == "" {
		return nil
	}
	if err := checkSignalConfig(cfg); err != nil {
		return fmt.Errorf("price forecast: %w", err)
	}
	if prev, dup := s.topics[cfg.Topic]; dup {
		return fmt.Errorf("price forecast: topic %q is already the topic of %s", cfg.Topic, prev)
	}
	if o.OnForecast == nil {
		return errors.New("price forecast: no OnForecast callback")
	}
	s.topics[cfg.Topic] = ForecastSignal
	s.subs[cfg.Topic] = 1
	return nil
}

// handleForecast parses, checks and delivers a forecast message; retained
// is the MQTT retain flag as delivered. With a publisher key the forecast
// comes signed, as the value of the envelope Verify reads (see SignJSON),
// and the replay rule of signed inputs applies. Called with s.mu held.
func (s *Source) handleForecast(topic string, payload []byte, retained bool) {
	var signed signedMessage
	if key := s.opts.Forecast.PublisherKey; key != nil {
		var reason string
		var err error
		// The envelope adds the ts and signature to a forecast of up to
		// MaxForecastPayloadBytes.
		if signed, reason, err = verify(key, topic, payload, MaxForecastPayloadBytes+256); err != nil {
			s.reject(ForecastSignal, topic, payload, reason, err)
			return
		}
		if drop, err := s.signedForecast.replayed(signed.ts, signed.sig, retained); drop {
			if err != nil {
				s.reject(ForecastSignal, topic, payload, ReasonReplayed, err)
			}
			return
		}
		payload = signed.value
	}
	f, reason, err := ParseForecast(payload, s.opts.Forecast, s.clock.Now(), s.lastForecast)
	if err != nil {
		s.reject(ForecastSignal, topic, payload, reason, err)
		return
	}
	f.Source = topic
	s.lastForecast = f.Issued
	if signed.sig != nil {
		s.signedForecast = signedLast{ts: signed.ts, sig: signed.sig}
	}
	s.opts.OnForecast(f)
}

// signalName names sig in logs: a signal's name, "price_forecast" for
// ForecastSignal, "unknown" for NoSignal.
func signalName(sig switchd.Signal) string {
	switch sig {
	case NoSignal:
		return "unknown"
	case ForecastSignal:
		return config.ForecastKey
	}
	return sig.String()
}
