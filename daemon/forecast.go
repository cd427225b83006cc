package daemon

import (
	"sync/atomic"

	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/controller"
	"go.uber.org/zap"
)

// forecastInbox carries the latest price forecast from the MQTT callback
// to the loop: the callback only stores it, and a newer one replaces one
// the loop has not taken yet (only the latest matters).
type forecastInbox struct {
	p atomic.Pointer[controller.Forecast]
}

// onForecast is the MQTT callback for an accepted price forecast: store it
// and ask the loop for a tick.
func (d *daemon) onForecast(f *controller.Forecast) {
	d.forecasts.p.Store(f)
	d.metrics.SignalAccepted(config.ForecastKey)
	d.poke()
}

// takeForecast hands a forecast received since the last call to the
// controller. Called from the loop only.
func (d *daemon) takeForecast() {
	f := d.forecasts.p.Swap(nil)
	if f == nil {
		return
	}
	d.mu.Lock()
	d.ctl.ObserveForecast(f)
	d.mu.Unlock()
	d.log.Info("price forecast received", zap.String("source", f.Source), zap.Time("issued", f.Issued),
		zap.Time("start", f.Start), zap.Duration("interval", f.Interval), zap.Int("prices", len(f.PricesUSDPerMWh)))
}
