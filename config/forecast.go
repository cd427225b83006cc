package config

import (
	"math"
	"reflect"
	"strings"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/internal/strictyaml"
)

// ForecastKey is the key of the price forecast in the site file's signals
// section. The forecast is not a scalar signal (it is a series of future
// interval prices), but it is configured like one: max_age (how old it may
// get before it is stale; Site.ForecastMaxAge), topic (default
// <signal_prefix>/price_forecast), min and max (bounds of every price in
// it; default the price signal's) and max_future (how far ahead of the
// local clock its ts may be).
const ForecastKey = "price_forecast"

// validateForecast reads signals.price_forecast into s.ForecastMaxAge and
// s.Daemon.Forecast. Min and Max are left NaN when the file does not set
// them: forecastTopic fills them from the price signal's.
func (f *siteFile) validateForecast(l *strictyaml.Loader, s *Site, path string, v *signalSection) {
	c := SignalConfig{Min: math.NaN(), Max: math.NaN(), MaxFuture: DefaultMaxFuture}
	if v.MaxAge != nil {
		if a := time.Duration(*v.MaxAge); a <= 0 {
			l.Errorf(strictyaml.JoinPath(path, "max_age"), "must be positive (got %s)", strictyaml.FmtDuration(a))
		} else if a > MaxMaxAge {
			l.Errorf(strictyaml.JoinPath(path, "max_age"), "must be at most %s (got %s): an older forecast is no signal", strictyaml.FmtDuration(MaxMaxAge), strictyaml.FmtDuration(a))
		} else {
			s.ForecastMaxAge, c.MaxAge = a, a
		}
	}
	if p := strictyaml.JoinPath(path, "topic"); l.Given(p, v.Topic) {
		switch msg := topicProblem(v.Topic); {
		case !l.Has("mqtt"):
			l.Errorf(p, "needs an mqtt section: there is no broker to read it from")
		case msg != "":
			l.Errorf(p, "%s", msg)
		default:
			c.Topic = v.Topic
		}
	}
	if v.Min != nil {
		c.Min = *v.Min
	}
	if v.Max != nil {
		c.Max = *v.Max
	}
	if v.Min != nil && v.Max != nil && !(c.Min < c.Max) {
		l.Errorf(strictyaml.JoinPath(path, "max"), "must be greater than min %s (got %s)", strictyaml.FmtFloat(c.Min), strictyaml.FmtFloat(c.Max))
	}
	if v.MaxFuture != nil {
		if mf := time.Duration(*v.MaxFuture); mf < 0 || mf > MaxMaxFuture {
			l.Errorf(strictyaml.JoinPath(path, "max_future"), "must be from 0 to %s (got %s)", strictyaml.FmtDuration(MaxMaxFuture), strictyaml.FmtDuration(mf))
		} else {
			c.MaxFuture = mf
		}
	}
	s.Daemon.Forecast = c
}

// forecastTopic settles the forecast's MQTT settings once the signals are
// known (the site has an mqtt section): the default topic, the price
// signal's bounds where the file set none, and a topic of its own.
func (f *siteFile) forecastTopic(l *strictyaml.Loader, s *Site, cfg *[switchd.NumSignals]SignalConfig) {
	c := &s.Daemon.Forecast
	if reflect.DeepEqual(*c, SignalConfig{}) { // no price_forecast key
		*c = SignalConfig{Min: math.NaN(), Max: math.NaN(), MaxFuture: DefaultMaxFuture}
	}
	price := cfg[switchd.SignalPrice]
	if math.IsNaN(c.Min) {
		c.Min = price.Min
	}
	if math.IsNaN(c.Max) {
		c.Max = price.Max
	}
	if !(c.Min < c.Max) {
		l.Errorf("signals."+ForecastKey, "its price range %s to %s is empty: set min and max", strictyaml.FmtFloat(c.Min), strictyaml.FmtFloat(c.Max))
	}
	m := &s.Daemon.MQTT
	if c.Topic == "" {
		// Under the signal prefix, beside the signals' default topics:
		// their checks already cover the prefix.
		c.Topic = m.SignalPrefix + "/" + ForecastKey
		return
	}
	where := "signals." + ForecastKey + ".topic"
	for _, sig := range switchd.AllSignals {
		if cfg[sig].Topic == c.Topic {
			l.Errorf(where, "%q is also the topic of signal %s: the price forecast needs its own", c.Topic, sig)
		}
	}
	if c.Topic == m.StateTopic || strings.HasPrefix(c.Topic, m.StateTopic+"/") {
		l.Errorf(where, "%q is under state_topic %q, where switchd publishes its own state", c.Topic, m.StateTopic)
	}
}
