package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestHandler: what the functions count and the sources report comes
// out in the Prometheus text format.
func TestHandler(t *testing.T) {
	closed := Connection("imap")
	Connection("lmtp")()
	closed()
	closed() // twice is once
	Login("imap", ResultOK)
	Login("imap", ResultFailed)
	Login("imap", ResultFailed)
	Delivery("lmtp", Delivered)
	SieveError()
	expiry := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	SetSources(Sources{
		Outbound: func() (int, time.Time, error) { return 2, time.Now().Add(-time.Minute), nil },
		Migration: func() (map[string]int, int64, int64, error) {
			return map[string]int{"queued": 4, "done": 1}, 1000, 10, nil
		},
		MigrationErrors: func() (int64, error) { return 0, io.ErrUnexpectedEOF },
		CertExpiry:      func() (time.Time, bool) { return expiry, true },
		Shared: func() (map[[2]string]int64, int64, error) {
			return map[[2]string]int64{{"deliver", Delivered}: 5, {"lmtp", Delivered}: 1}, 2, nil
		},
	})
	defer SetSources(Sources{})
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`mailmig_connections_total{protocol="imap"} 1`,
		`mailmig_connections_total{protocol="lmtp"} 1`,
		`mailmig_connections_active{protocol="imap"} 0`,
		`mailmig_logins_total{protocol="imap",result="failed"} 2`,
		`mailmig_logins_total{protocol="imap",result="ok"} 1`,
		`mailmig_deliveries_total{outcome="delivered",via="lmtp"} 2`,
		`mailmig_deliveries_total{outcome="delivered",via="deliver"} 5`,
		`mailmig_sieve_runtime_errors_total 3`,
		`mailmig_outbound_queue_messages 2`,
		`mailmig_migration_users{state="queued"} 4`,
		`mailmig_migration_copied_bytes 1000`,
		`mailmig_metrics_source_errors{source="migration_errors"} 1`,
		`mailmig_tls_certificate_expiry_timestamp_seconds 1.893553445e+09`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("missing %q", want)
		}
	}
	if strings.Contains(body, "mailmig_migration_step_failures ") {
		t.Error("a failed source still reported a value")
	}
	if t.Failed() {
		t.Log(body)
	}
}
