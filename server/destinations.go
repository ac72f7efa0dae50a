package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/idgraph/idgraph/consent"
	"github.com/idgraph/idgraph/destinations"
)

// Per-destination metrics, read from each destination's stored cursor when
// scraped: they count what every process delivered, and survive restarts.
var (
	destDelivered = prometheus.NewDesc("idgraph_destination_delivered_total",
		"Webhook messages a destination's receiver accepted (2xx).", []string{"destination"}, nil)
	destFailed = prometheus.NewDesc("idgraph_destination_failed_attempts_total",
		"Webhook delivery attempts that failed (no answer, or not 2xx).", []string{"destination"}, nil)
	destDead = prometheus.NewDesc("idgraph_destination_dead_letters_total",
		"Changes given up on after the whole retry schedule.", []string{"destination"}, nil)
	destEnabled = prometheus.NewDesc("idgraph_destination_enabled",
		"1 while a destination is enabled, 0 once disabled (by an admin, or after a 410).", []string{"destination"}, nil)
	destRetrying = prometheus.NewDesc("idgraph_destination_retry_attempts",
		"Failed attempts of the change a destination is retrying (0: none).", []string{"destination"}, nil)
	destWithheld = prometheus.NewDesc("idgraph_destination_consent_withheld_total",
		"Entries a destination with a purpose did not send for want of consent, by reason.", []string{"destination", "reason"}, nil)
	destPending = prometheus.NewDesc("idgraph_destination_pending",
		"Change records waiting to be delivered to a destination (counted up to 10,000).", []string{"destination"}, nil)
	destOldest = prometheus.NewDesc("idgraph_destination_oldest_pending_age_seconds",
		"Age of the oldest change record waiting for a destination (0: none).", []string{"destination"}, nil)
	destPendingRequests = prometheus.NewDesc("idgraph_destination_pending_requests",
		"Withdrawals, erasure notices and consent catch-ups waiting to be sent to a destination (counted up to 1,000).", []string{"destination"}, nil)
	destOldestRequest = prometheus.NewDesc("idgraph_destination_oldest_pending_request_age_seconds",
		"Age of the oldest withdrawal, erasure notice or catch-up waiting for a destination (0: none).", []string{"destination"}, nil)
	destSuppressed = prometheus.NewDesc("idgraph_destination_suppressed_total",
		"Messages other than exits a destination did not send because the profile held an identifier on a suppression list, by reason (suppressed).",
		[]string{"destination", "reason"}, nil)
)

// registerDestinationMetrics registers the per-destination metrics: those
// read from the stored cursors when scraped, and those the manager reports
// as it delivers (this process's deliveries).
func registerDestinationMetrics(reg *prometheus.Registry, m *destinations.Manager, log func(error)) {
	obs := destinationsObserver{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "idgraph_destination_delivery_latency_seconds",
			Help:    "From a change record's time to its receiver's 2xx, by destination (this process's deliveries).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 16)}, []string{"destination"}),
		disabled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "idgraph_destination_disabled_for_failing_total",
			Help: "Destinations disabled because their head record failed for longer than --destinations-disable-after."}, []string{"destination"}),
	}
	reg.MustRegister(destinationsCollector{m: m, log: log}, obs.latency, obs.disabled)
	m.SetObserver(obs)
}

// destinationsObserver turns the manager's reports into metrics.
type destinationsObserver struct {
	latency  *prometheus.HistogramVec
	disabled *prometheus.CounterVec
}

func (o destinationsObserver) Delivered(dst string, latency time.Duration) {
	o.latency.WithLabelValues(dst).Observe(latency.Seconds())
}

func (o destinationsObserver) DisabledForFailing(dst string) { o.disabled.WithLabelValues(dst).Inc() }

type destinationsCollector struct {
	m   *destinations.Manager
	log func(error)
}

func (c destinationsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{destDelivered, destFailed, destDead, destEnabled, destRetrying, destWithheld, destPending, destOldest, destPendingRequests, destOldestRequest, destSuppressed} {
		ch <- d
	}
}

func (c destinationsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ds, err := c.m.List(ctx)
	if err != nil {
		c.log(err)
		return
	}
	for _, d := range ds {
		cur, err := c.m.Cursor(ctx, d.ID)
		if err != nil {
			c.log(err)
			continue
		}
		enabled, retrying := 0.0, 0.0
		if d.Enabled {
			enabled = 1
		}
		if cur.Head != nil {
			retrying = float64(cur.Head.Attempts)
		}
		ch <- prometheus.MustNewConstMetric(destDelivered, prometheus.CounterValue, float64(cur.Delivered), d.ID)
		ch <- prometheus.MustNewConstMetric(destFailed, prometheus.CounterValue, float64(cur.FailedTries), d.ID)
		ch <- prometheus.MustNewConstMetric(destDead, prometheus.CounterValue, float64(cur.DeadLettered), d.ID)
		ch <- prometheus.MustNewConstMetric(destEnabled, prometheus.GaugeValue, enabled, d.ID)
		ch <- prometheus.MustNewConstMetric(destRetrying, prometheus.GaugeValue, retrying, d.ID)
		ch <- prometheus.MustNewConstMetric(destSuppressed, prometheus.CounterValue, float64(cur.Withheld[destinations.ReasonSuppressed]),
			d.ID, destinations.ReasonSuppressed)
		if h, err := c.m.Health(ctx, d); err != nil {
			c.log(err)
		} else {
			age := 0.0
			if h.Pending > 0 {
				age = max(time.Since(h.OldestPending).Seconds(), 0)
			}
			ch <- prometheus.MustNewConstMetric(destPending, prometheus.GaugeValue, float64(h.Pending), d.ID)
			ch <- prometheus.MustNewConstMetric(destOldest, prometheus.GaugeValue, age, d.ID)
			age = 0
			if h.PendingRequests > 0 {
				age = max(time.Since(h.OldestPendingRequest).Seconds(), 0)
			}
			ch <- prometheus.MustNewConstMetric(destPendingRequests, prometheus.GaugeValue, float64(h.PendingRequests), d.ID)
			ch <- prometheus.MustNewConstMetric(destOldestRequest, prometheus.GaugeValue, age, d.ID)
		}
		if d.Purpose != "" {
			for _, reason := range consent.Reasons {
				ch <- prometheus.MustNewConstMetric(destWithheld, prometheus.CounterValue, float64(cur.Withheld[reason]), d.ID, reason)
			}
		}
		if n := cur.Withheld[destinations.ReasonNoPurpose]; n > 0 {
			ch <- prometheus.MustNewConstMetric(destWithheld, prometheus.CounterValue, float64(n), d.ID, destinations.ReasonNoPurpose)
		}
	}
}
