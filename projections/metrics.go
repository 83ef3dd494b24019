package projections

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the projection's Prometheus series.
type Metrics struct {
	applied      prometheus.Counter
	lag          prometheus.Gauge
	batchSeconds prometheus.Histogram
}

// NewMetrics registers the projection's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		applied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledger_projection_applied_events_total",
			Help: "Events folded into the read store; rate() of it is the fold rate.",
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ledger_projection_lag_events",
			Help: "Events in the stream not yet applied to the read store.",
		}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ledger_projection_batch_seconds",
			Help:    "Time to apply one batch transaction to the read store.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
	}
	reg.MustRegister(m.applied, m.lag, m.batchSeconds)
	return m
}
