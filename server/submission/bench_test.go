package submission

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"mailmig/server/outbound"
)

// BenchmarkSubmission measures accepted messages per second for remote
// recipients: AUTH once per connection, then MAIL/RCPT/DATA of a 4 KiB
// message into the real outgoing queue (spool files, fsync), over TLS
// (STARTTLS) with parallel client connections.
//
//	go test ./server/submission -run XXX -bench Submission -benchtime 2000x
func BenchmarkSubmission(b *testing.B) {
	for _, mode := range []string{"clear", "starttls"} {
		b.Run(mode, func(b *testing.B) {
			f := start(b, func(s *Server) {
				s.AllowInsecureAuth = true
				s.Outbound = &outbound.Queue{Dir: b.TempDir(), Hostname: "mail.example.org", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			})
			body := "From: alice@example.org\r\nSubject: bench\r\n\r\n" + strings.Repeat(strings.Repeat("x", 62)+"\r\n", 64)
			b.SetBytes(int64(len(body)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var c *smtp.Client
				var err error
				if mode == "starttls" {
					c, err = smtp.DialStartTLS(f.addr, f.client)
				} else {
					c, err = smtp.Dial(f.addr)
				}
				if err != nil {
					b.Error(err)
					return
				}
				defer c.Close()
				if err := c.Auth(sasl.NewPlainClient("", "alice", "wonderland")); err != nil {
					b.Error(err)
					return
				}
				for pb.Next() {
					if err := send(c, "alice@example.org", []string{"carol@remote.test"}, body); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
