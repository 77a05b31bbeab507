package main

import (
	"fmt"
	"net/smtp"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startPostfixLMTP starts Debian's Postfix with a configuration directory
// of its own: smtpd on a loopback port, every recipient at example.org
// delivered by its lmtp client to lmtpAddr (a TCP listener of mailmig
// serve), with connection caching for that destination, extra main.cf
// lines appended.
func startPostfixLMTP(t *testing.T, lmtpAddr, extra string) *postfixInstance {
	t.Helper()
	base := t.TempDir()
	// postfix's daemons run as postfix: the test's directories must let
	// them through.
	must(t, os.Chmod(filepath.Dir(base), 0o755))
	must(t, os.Chmod(base, 0o755))
	p := newPostfixInstance(t, base)
	p.start(p.baseMainCf()+fmt.Sprintf(`local_recipient_maps =
local_transport = lmtp:inet:%s
%s`, lmtpAddr, extra), "")
	return p
}

// TestPostfixLMTPReuse: Postfix's lmtp client caches its connection to
// mailmig's LMTP listener and reuses it for message after message (RSET,
// MAIL... within lmtp_connection_cache_time_limit, 2 s) for longer than
// the pre-MAIL bound (preauth_timeout = 3s here): each delivered message
// starts the bound again, so the cached connection is never cut and no
// message is deferred; an idle connection left behind is closed by
// Postfix's own cache limit before the bound.
func TestPostfixLMTPReuse(t *testing.T) {
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pw-1")
	s := startServeConfig(t, dir, abuseConfig(smtpPreAuthConfig))
	lmtpAddr := s.Addr("lmtp")
	pf := startPostfixLMTP(t, lmtpAddr, "lmtp_connection_cache_destinations = static:all\n")
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(s.Log())
			t.Log(pf.log())
		}
	})
	const n = 8
	start := time.Now()
	for i := 0; i < n; i++ {
		if i > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(i) * 800 * time.Millisecond)))
		}
		msg := fmt.Sprintf("From: bob@example.org\r\nTo: alice@example.org\r\nSubject: reuse %d\r\n\r\nmessage %d\r\n", i, i)
		if err := smtp.SendMail("127.0.0.1:"+pf.port, nil, "bob@example.org", []string{"alice@example.org"}, []byte(msg)); err != nil {
			t.Fatalf("message %d to postfix: %v", i, err)
		}
	}
	sent := regexp.MustCompile(`(?m)^.*postfix/lmtp\[\d+\]: .*to=<alice@example\.org>.*status=sent.*$`)
	deadline := time.Now().Add(30 * time.Second)
	var lines []string
	for {
		lines = sent.FindAllString(pf.log(), -1)
		if len(lines) == n || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	log := pf.log()
	if len(lines) != n {
		t.Fatalf("%d of %d messages delivered over LMTP", len(lines), n)
	}
	if regexp.MustCompile(`status=deferred|postfix/lmtp\[\d+\]: .*(lost connection|conversation .* timed out)`).MatchString(log) {
		t.Fatalf("postfix deferred or lost its LMTP connection:\n%s", log)
	}
	// conn_use=K on the K-th message over one connection: a connection
	// used 5 times at 800 ms intervals lived 3.2 s, beyond the 3 s bound.
	maxUse := 1
	for _, l := range lines {
		if m := regexp.MustCompile(`conn_use=(\d+)`).FindStringSubmatch(l); m != nil {
			if k, _ := strconv.Atoi(m[1]); k > maxUse {
				maxUse = k
			}
		}
	}
	t.Logf("%d messages over %v, most uses of one cached connection: %d", n, time.Since(start).Round(time.Millisecond), maxUse)
	if maxUse < 5 {
		t.Fatalf("postfix reused a connection at most %d times: the test shows nothing about a bound\n%s", maxUse, strings.Join(lines, "\n"))
	}
	if strings.Contains(s.Log(), "bound=pre-MAIL") || strings.Contains(s.Log(), "bound=command") {
		t.Fatalf("mailmig cut a connection of Postfix's:\n%s", s.Log())
	}
}
