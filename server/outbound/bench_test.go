package outbound

import (
	"context"
	"strings"
	"testing"
	"time"

	"mailmig/server/outbound/outboundtest"
)

// BenchmarkEnqueue measures durable spooling (message file, envelope,
// fsyncs, renames) of a 4 KiB message.
//
//	go test ./server/outbound -run XXX -bench . -benchtime 2000x
func BenchmarkEnqueue(b *testing.B) {
	q := &Queue{Dir: b.TempDir(), Hostname: "h", Log: quietLog()}
	body := strings.Repeat(strings.Repeat("x", 62)+"\r\n", 64)
	b.SetBytes(int64(len(body)))
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := q.Send(ctx, "a@example.org", []string{"b@remote.test"}, strings.NewReader(body)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkRelay measures draining a spool to a smarthost on loopback
// (one SMTP session per queued message).
func BenchmarkRelay(b *testing.B) {
	sink := outboundtest.Start(b, outboundtest.Options{})
	q := &Queue{Dir: b.TempDir(), Hostname: "h", Log: quietLog(),
		Relay: Smarthost{Addr: sink.Addr, TLS: "none", Timeout: 5 * time.Second}}
	body := strings.Repeat(strings.Repeat("x", 62)+"\r\n", 64)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		q.Send(ctx, "a@example.org", []string{"b@remote.test"}, strings.NewReader(body))
	}
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	if _, err := q.RunOnce(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if got := len(sink.Messages()); got != b.N {
		b.Fatalf("sink got %d of %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
