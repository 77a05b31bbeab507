package sieve

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rules200 is a script of 200 rules of the shapes the web form writes
// (header contains/is/matches/regex, negated, size, address, fileinto,
// flags, stop), which no message matches until the last one.
func rules200() string {
	var b strings.Builder
	b.WriteString(`require ["fileinto", "mailbox", "regex", "imap4flags", "reject", "copy"];` + "\n")
	for i := 0; i < 200; i++ {
		switch i % 8 {
		case 0:
			fmt.Fprintf(&b, "if header :contains \"from\" \"sender%d@example.org\" { fileinto :create \"F%d\"; stop; }\n", i, i)
		case 1:
			fmt.Fprintf(&b, "if header :contains [\"to\", \"cc\"] \"list%d@lists.example\" { fileinto \"L%d\"; stop; }\n", i, i)
		case 2:
			fmt.Fprintf(&b, "if header :matches \"subject\" \"*[project-%d]*\" { fileinto :create \"P%d\"; addflag \"\\\\Flagged\"; stop; }\n", i, i)
		case 3:
			fmt.Fprintf(&b, "if header :regex \"subject\" \"^(re|fwd): ticket #%d\" { fileinto \"T%d\"; stop; }\n", i, i)
		case 4:
			fmt.Fprintf(&b, "if allof (not header :contains \"subject\" \"hello\", header :is \"x-mailer\" \"tool%d\") { discard; stop; }\n", i)
		case 5:
			fmt.Fprintf(&b, "if address :is \"from\" \"boss%d@example.org\" { fileinto :copy \"Boss\"; keep :flags \"\\\\Deleted\"; stop; }\n", i)
		case 6:
			fmt.Fprintf(&b, "if anyof (size :over 50M, header :contains \"x-tag\" \"t%d\") { fileinto \"Big\"; stop; }\n", i)
		case 7:
			fmt.Fprintf(&b, "if header :contains \"list-id\" \"<group%d.example.org>\" { fileinto :create \"G%d\"; stop; }\n", i, i)
		}
	}
	b.WriteString("if header :contains \"subject\" \"hello\" { fileinto \"Hello\"; }\n")
	return b.String()
}

// BenchmarkScript200Rules: one message through a 200-rule script (the
// issue's target: at most 50 µs per message).
func BenchmarkScript200Rules(b *testing.B) {
	s, err := Compile([]byte(rules200()), Options{})
	if err != nil {
		b.Fatal(err)
	}
	raw := []byte("Return-Path: <bob@example.org>\r\nReceived: from a by b; Mon, 23 Nov 2026 10:00:00 +0000\r\n" +
		"From: Bob Example <bob@example.org>\r\nTo: Alice <alice@example.com>\r\nCc: team@example.com\r\n" +
		"Subject: hello there, a subject of ordinary length\r\nMessage-ID: <m1@example.org>\r\n" +
		"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nX-Mailer: Thunderbird\r\n\r\n" + strings.Repeat("body text line\r\n", 200))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := NewMessage(raw)
		o, err := s.Execute(ctx, &Input{EnvelopeFrom: "bob@example.org", EnvelopeTo: "alice@example.com", Msg: m})
		if err != nil || len(o.Mailboxes) != 1 {
			b.Fatalf("%v %+v", err, o)
		}
	}
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestScript200RulesBudget keeps the target honest in make test: the
// 200-rule script costs at most 50 µs of CPU per message. CPU time, not
// wall time, so that a loaded shared machine does not fail it (wall time
// is what BenchmarkScript200Rules reports).
func TestScript200RulesBudget(t *testing.T) {
	s, err := Compile([]byte(rules200()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if raceEnabled {
		t.Log("time bound not checked under the race detector")
		return
	}
	raw := []byte("From: Bob Example <bob@example.org>\r\nTo: Alice <alice@example.com>\r\nSubject: hello there\r\n" +
		"Message-ID: <m1@example.org>\r\nX-Mailer: Thunderbird\r\n\r\n" + strings.Repeat("body text line\r\n", 200))
	ctx := context.Background()
	run := func(n int) time.Duration {
		start := cpuTime()
		for i := 0; i < n; i++ {
			o, err := s.Execute(ctx, &Input{EnvelopeFrom: "bob@example.org", EnvelopeTo: "alice@example.com", Msg: NewMessage(raw)})
			if err != nil || len(o.Mailboxes) != 1 {
				t.Fatalf("%v %+v", err, o)
			}
		}
		return (cpuTime() - start) / time.Duration(n)
	}
	run(200) // warm up
	per := run(3000)
	// Best of two: the process's other goroutines (GC) count too.
	if p2 := run(3000); p2 < per {
		per = p2
	}
	t.Logf("200-rule script: %v CPU per message", per)
	if per > 50*time.Microsecond {
		t.Errorf("200-rule script costs %v of CPU per message, target 50µs", per)
	}
}
