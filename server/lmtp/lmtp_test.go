package lmtp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"

	"mailmig/server/delivery"
	"mailmig/server/msgspool"
)

// fakeDeliverer answers by user name and records what it got.
type fakeDeliverer struct {
	mu   sync.Mutex
	got  []delivery.Envelope
	msgs [][]byte
}

func (f *fakeDeliverer) Deliver(_ context.Context, env delivery.Envelope, src msgspool.Source) (*delivery.Result, error) {
	msg, err := msgspool.ReadAll(src)
	if err != nil {
		return nil, delivery.Temporary(err)
	}
	f.mu.Lock()
	f.got = append(f.got, env)
	f.msgs = append(f.msgs, msg)
	f.mu.Unlock()
	switch env.User {
	case "full":
		return nil, fmt.Errorf("x: %w", delivery.ErrOverQuota)
	case "tempfull":
		return nil, delivery.Temporary(fmt.Errorf("x: %w", delivery.ErrOverQuota))
	case "rejecter":
		return nil, &delivery.RejectError{Reason: "I do not want this"}
	case "multiline":
		return nil, &delivery.RejectError{Reason: "Nicht hier.\r\nGrüße, Alice\r\nbye"}
	case "broken":
		return nil, errors.New("open /secret/path: permission denied")
	}
	return &delivery.Result{Stored: []delivery.StoredCopy{{Folder: "INBOX", UID: 1}}}, nil
}

func startServer(t *testing.T, network string) (*Server, *fakeDeliverer, string) {
	t.Helper()
	fd := &fakeDeliverer{}
	s := &Server{
		Deliverer: fd,
		Hostname:  "mx.test",
		Resolve: func(a string) (string, string, error) {
			u, d, err := SplitAddress(a, []string{"example.com"})
			if err == nil && u == "ghost" {
				err = delivery.ErrUnknownUser
			}
			return u, d, err
		},
	}
	var ln net.Listener
	var err error
	if network == "unix" {
		ln, err = net.Listen("unix", filepath.Join(t.TempDir(), "lmtp.sock"))
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s, fd, ln.Addr().String()
}

func TestLMTPPerRecipientReplies(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			_, fd, addr := startServer(t, network)
			conn, err := net.Dial(network, addr)
			if err != nil {
				t.Fatal(err)
			}
			c := smtp.NewClientLMTP(conn)
			defer c.Close()
			if err := c.Hello("mta.test"); err != nil {
				t.Fatal(err)
			}
			if err := c.Mail("sender@example.org", nil); err != nil {
				t.Fatal(err)
			}
			// Unknown users are refused at RCPT time.
			for _, bad := range []string{"ghost@example.com", "alice@elsewhere.org"} {
				err := c.Rcpt(bad, nil)
				var se *smtp.SMTPError
				if !errors.As(err, &se) || se.Code != 550 || se.EnhancedCode != (smtp.EnhancedCode{5, 1, 1}) {
					t.Errorf("RCPT %s: %v", bad, err)
				}
			}
			rcpts := []string{"alice+lists@example.com", "full@example.com", "tempfull@example.com", "rejecter@example.com", "broken@example.com"}
			for _, r := range rcpts {
				if err := c.Rcpt(r, nil); err != nil {
					t.Fatalf("RCPT %s: %v", r, err)
				}
			}
			w, err := c.Data()
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(w, "Subject: hi\r\n\r\nhello\r\n")
			resp, err := w.CloseWithLMTPResponse()
			var lerr smtp.LMTPDataError
			if !errors.As(err, &lerr) {
				t.Fatalf("close: %v (%T)", err, err)
			}
			want := map[string]struct {
				code int
				enh  smtp.EnhancedCode
				text string
			}{
				"full@example.com":     {552, smtp.EnhancedCode{5, 2, 2}, "Mailbox is full"},
				"tempfull@example.com": {452, smtp.EnhancedCode{4, 2, 2}, ""},
				"rejecter@example.com": {550, smtp.EnhancedCode{5, 7, 1}, "I do not want this"},
				"broken@example.com":   {451, smtp.EnhancedCode{4, 3, 0}, ""},
			}
			for r, w := range want {
				e := lerr[r]
				if e == nil || e.Code != w.code || e.EnhancedCode != w.enh || !strings.Contains(e.Message, w.text) {
					t.Errorf("%s: got %+v, want %+v", r, e, w)
				}
				if e != nil && strings.Contains(e.Message, "secret") {
					t.Errorf("%s: internal detail leaked: %q", r, e.Message)
				}
			}
			if _, ok := lerr["alice+lists@example.com"]; ok {
				t.Errorf("alice failed: %v", lerr["alice+lists@example.com"])
			}
			_ = resp
			if len(fd.got) != 5 {
				t.Fatalf("delivered %d", len(fd.got))
			}
			ai := -1
			for i, g := range fd.got {
				if g.To == "alice+lists@example.com" {
					ai = i
				}
			}
			if ai < 0 {
				t.Fatalf("alice not delivered: %+v", fd.got)
			}
			if g := fd.got[ai]; g.User != "alice" || g.Detail != "lists" || g.From != "sender@example.org" {
				t.Errorf("envelope %+v", g)
			}
			m := string(fd.msgs[ai])
			if !strings.HasPrefix(m, "Return-Path: <sender@example.org>\r\nReceived: from mta.test") ||
				!strings.Contains(m, "for <alice+lists@example.com>") || !strings.HasSuffix(m, "Subject: hi\r\n\r\nhello\r\n") {
				t.Errorf("message %q", m)
			}
			if err := c.Quit(); err != nil {
				t.Errorf("quit: %v", err)
			}
		})
	}
}

func TestLMTPNullSenderAndSize(t *testing.T) {
	s, fd, addr := startServer(t, "tcp")
	_ = s
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	lc := smtp.NewClientLMTP(conn)
	defer lc.Close()
	if err := lc.SendMail("", []string{"bob@example.com"}, strings.NewReader("Subject: bounce\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	if len(fd.got) != 1 || fd.got[0].From != "" || !strings.HasPrefix(string(fd.msgs[0]), "Return-Path: <>\r\n") {
		t.Fatalf("null sender: %+v %q", fd.got, fd.msgs)
	}
}

func TestSplitAddress(t *testing.T) {
	tests := []struct {
		in           string
		domains      []string
		user, detail string
		ok           bool
	}{
		{"alice@example.com", nil, "alice", "", true},
		{"<Alice+Tag+more@Example.COM>", []string{"example.com"}, "alice", "Tag+more", true},
		{"alice@other.org", []string{"example.com"}, "", "", false},
		{"alice", nil, "", "", false},
		{"@example.com", nil, "", "", false},
		{"+x@example.com", nil, "", "", false},
		{"../x@example.com", nil, "", "", false},
		{"", nil, "", "", false},
	}
	for _, tt := range tests {
		u, d, err := SplitAddress(tt.in, tt.domains)
		if (err == nil) != tt.ok || u != tt.user || d != tt.detail {
			t.Errorf("SplitAddress(%q) = %q %q %v", tt.in, u, d, err)
		}
		if err != nil && !errors.Is(err, delivery.ErrUnknownUser) {
			t.Errorf("SplitAddress(%q): %v is not ErrUnknownUser", tt.in, err)
		}
	}
}

func FuzzSplitAddress(f *testing.F) {
	f.Add("alice+x@example.com")
	f.Add("<a@b>")
	f.Fuzz(func(t *testing.T, addr string) {
		u, _, err := SplitAddress(addr, nil)
		if err == nil && (u == "" || strings.ContainsAny(u, "/\x00") || u != strings.ToLower(u)) {
			t.Fatalf("bad user %q from %q", u, addr)
		}
	})
}
