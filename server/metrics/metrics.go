// Package metrics is mailmig's Prometheus instrumentation: the counters
// and gauges every server package reports to, and the HTTP handler
// `mailmig serve` exposes on its [metrics] listener (loopback by
// default), built on github.com/prometheus/client_golang.
//
// Counting is a plain function call (metrics.Login("imap", "ok")) so a
// package needs no handle; the figures that live elsewhere (the outgoing
// spool, the migration queue in the state database, the certificate) are
// read when Prometheus scrapes, through the Source functions serve sets
// with SetSources. The migration runs in other processes (mailmig run);
// its figures (users per state, bytes and messages copied, failed steps)
// come from the state database they all share, so serve's endpoint is the
// only one to scrape. Every metric is named mailmig_*; label values are
// short fixed words, never user names or addresses (cardinality).
package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Login results.
const (
	ResultOK          = "ok"
	ResultFailed      = "failed"       // wrong password or no such user
	ResultRateLimited = "rate_limited" // refused without a check
	ResultError       = "error"        // the check itself failed (database)
)

// Delivery outcomes.
const (
	Delivered = "delivered" // stored (or handed to the outgoing queue)
	Rejected  = "rejected"  // permanent failure (5xx, EX_NOUSER...)
	Deferred  = "deferred"  // temporary failure (4xx, EX_TEMPFAIL)
)

var (
	registry = prometheus.NewRegistry()

	connections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mailmig_connections_total",
		Help: "Connections accepted, by listener protocol (imap, imaps, submission, submissions, managesieve, lmtp, web).",
	}, []string{"protocol"})
	activeConnections = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "mailmig_connections_active",
		Help: "Connections open now, by listener protocol.",
	}, []string{"protocol"})
	logins = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mailmig_logins_total",
		Help: "Password logins by protocol (imap, submission, managesieve, web) and result (ok, failed, rate_limited, error).",
	}, []string{"protocol", "result"})

	sourcesMu sync.Mutex
	sources   Sources

	// deliveries by [via, outcome]: a collector of ours, so that the
	// counts other processes keep (Sources.Shared) join the same series.
	deliveriesMu sync.Mutex
	deliveries   = map[[2]string]float64{}
	sieveErrors  float64
)

func init() {
	registry.MustRegister(connections, activeConnections, logins, sourceCollector{},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// Connection counts an accepted connection of protocol; call the
// returned function when it closes.
func Connection(protocol string) (closed func()) {
	connections.WithLabelValues(protocol).Inc()
	g := activeConnections.WithLabelValues(protocol)
	g.Inc()
	var once sync.Once
	return func() { once.Do(g.Dec) }
}

// Login counts a password check of protocol with result (Result*).
func Login(protocol, result string) { logins.WithLabelValues(protocol, result).Inc() }

// Delivery counts one recipient's delivery through via (lmtp, deliver,
// submission) with outcome (Delivered, Rejected, Deferred) in this
// process. (`mailmig deliver` counts in the state database instead, which
// Sources.Shared reads.)
func Delivery(via, outcome string) {
	deliveriesMu.Lock()
	deliveries[[2]string{via, outcome}]++
	deliveriesMu.Unlock()
}

// SieveError counts a Sieve run-time error in this process.
func SieveError() {
	deliveriesMu.Lock()
	sieveErrors++
	deliveriesMu.Unlock()
}

// Sources are read at every scrape; a nil function leaves its metrics
// out. They must be quick (a directory listing, one database query).
type Sources struct {
	// Outbound returns the outgoing queue's length and its oldest entry's
	// creation time (zero when empty).
	Outbound func() (n int, oldest time.Time, err error)
	// Migration returns the migration queue: users per state, and the
	// bytes and messages copied for them so far (the state database).
	Migration func() (users map[string]int, bytes, messages int64, err error)
	// MigrationErrors returns how many failed attempts of a migration
	// step (conversion and copy errors included) the event log holds.
	MigrationErrors func() (int64, error)
	// CertExpiry returns the serving certificate's NotAfter.
	CertExpiry func() (time.Time, bool)
	// Shared returns the deliveries, by [via, outcome], and the Sieve
	// run-time errors that other processes (mailmig deliver, run once per
	// message by the MTA) counted in the state database.
	Shared func() (deliveries map[[2]string]int64, sieveErrors int64, err error)
}

// SetSources installs the scrape-time sources (serve does, once).
func SetSources(s Sources) {
	sourcesMu.Lock()
	sources = s
	sourcesMu.Unlock()
}

var (
	descOutboundSize   = prometheus.NewDesc("mailmig_outbound_queue_messages", "Messages in the outgoing queue.", nil, nil)
	descOutboundAge    = prometheus.NewDesc("mailmig_outbound_queue_oldest_age_seconds", "Age of the oldest message in the outgoing queue (0 when empty).", nil, nil)
	descMigrationUsers = prometheus.NewDesc("mailmig_migration_users", "Users in the migration queue, by state.", []string{"state"}, nil)
	descMigBytes       = prometheus.NewDesc("mailmig_migration_copied_bytes", "Bytes copied for the users in the migration queue (state database).", nil, nil)
	descMigMessages    = prometheus.NewDesc("mailmig_migration_copied_messages", "Messages copied for the users in the migration queue (state database).", nil, nil)
	descMigErrors      = prometheus.NewDesc("mailmig_migration_step_failures", "Failed attempts of a migration step (conversion and copy errors included), from the event log.", nil, nil)
	descCertExpiry     = prometheus.NewDesc("mailmig_tls_certificate_expiry_timestamp_seconds", "NotAfter of the served TLS certificate, as a Unix time.", nil, nil)
	descSieveErrors    = prometheus.NewDesc("mailmig_sieve_runtime_errors_total", "Sieve scripts that failed at run time (the message was kept in INBOX).", nil, nil)
	descDeliveries     = prometheus.NewDesc("mailmig_deliveries_total", "Messages delivered per recipient, by path (lmtp, deliver, submission) and outcome (delivered, rejected, deferred).", []string{"via", "outcome"}, nil)
	descScrapeErrors   = prometheus.NewDesc("mailmig_metrics_source_errors", "Scrape-time sources that failed in this scrape, by source.", []string{"source"}, nil)
)

// sourceCollector reads Sources at scrape time.
type sourceCollector struct{}

func (sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDeliveries, descSieveErrors, descOutboundSize, descOutboundAge, descMigrationUsers, descMigBytes, descMigMessages, descMigErrors, descCertExpiry, descScrapeErrors} {
		ch <- d
	}
}

func (sourceCollector) Collect(ch chan<- prometheus.Metric) {
	sourcesMu.Lock()
	s := sources
	sourcesMu.Unlock()
	failed := func(name string) {
		ch <- prometheus.MustNewConstMetric(descScrapeErrors, prometheus.GaugeValue, 1, name)
	}
	deliveriesMu.Lock()
	counts := make(map[[2]string]float64, len(deliveries))
	for k, v := range deliveries {
		counts[k] = v
	}
	sieve := sieveErrors
	deliveriesMu.Unlock()
	if s.Shared != nil {
		if shared, se, err := s.Shared(); err != nil {
			failed("shared")
		} else {
			for k, v := range shared {
				counts[k] += float64(v)
			}
			sieve += float64(se)
		}
	}
	ch <- prometheus.MustNewConstMetric(descSieveErrors, prometheus.CounterValue, sieve)
	for k, v := range counts {
		ch <- prometheus.MustNewConstMetric(descDeliveries, prometheus.CounterValue, v, k[0], k[1])
	}
	if s.Outbound != nil {
		if n, oldest, err := s.Outbound(); err != nil {
			failed("outbound")
		} else {
			age := 0.0
			if n > 0 && !oldest.IsZero() {
				age = time.Since(oldest).Seconds()
			}
			ch <- prometheus.MustNewConstMetric(descOutboundSize, prometheus.GaugeValue, float64(n))
			ch <- prometheus.MustNewConstMetric(descOutboundAge, prometheus.GaugeValue, age)
		}
	}
	if s.Migration != nil {
		if users, b, m, err := s.Migration(); err != nil {
			failed("migration")
		} else {
			for st, n := range users {
				ch <- prometheus.MustNewConstMetric(descMigrationUsers, prometheus.GaugeValue, float64(n), st)
			}
			ch <- prometheus.MustNewConstMetric(descMigBytes, prometheus.GaugeValue, float64(b))
			ch <- prometheus.MustNewConstMetric(descMigMessages, prometheus.GaugeValue, float64(m))
		}
	}
	if s.MigrationErrors != nil {
		if n, err := s.MigrationErrors(); err != nil {
			failed("migration_errors")
		} else {
			ch <- prometheus.MustNewConstMetric(descMigErrors, prometheus.GaugeValue, float64(n))
		}
	}
	if s.CertExpiry != nil {
		if t, ok := s.CertExpiry(); ok {
			ch <- prometheus.MustNewConstMetric(descCertExpiry, prometheus.GaugeValue, float64(t.Unix()))
		}
	}
}

// Handler serves the metrics in the Prometheus text format.
func Handler() http.Handler {
	return promhttp.HandlerFor(registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
