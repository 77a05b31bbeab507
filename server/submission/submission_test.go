package submission

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"mailmig/server/auth"
	"mailmig/server/msgspool"
	"mailmig/server/outbound/outboundtest"
)

type fakeAuth map[string]string

func (f fakeAuth) Authenticate(_ context.Context, _, user, pass string) error {
	if user == "locked" {
		return fmt.Errorf("user %s: %w", user, auth.ErrRateLimited)
	}
	if p, ok := f[user]; ok && p == pass {
		return nil
	}
	return errors.New("bad password for " + user + " at /secret/path")
}

type delivered struct {
	env Envelope
	msg []byte
}

type fakeDeliverer struct {
	mu   sync.Mutex
	got  []delivered
	fail map[string]error // by User
}

func (d *fakeDeliverer) Deliver(_ context.Context, env Envelope, src msgspool.Source) error {
	msg, err := msgspool.ReadAll(src)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.fail[env.User]; err != nil {
		return err
	}
	d.got = append(d.got, delivered{env, append([]byte(nil), msg...)})
	return nil
}

type sent struct {
	from string
	to   []string
	msg  []byte
}

type fakeQueue struct {
	mu  sync.Mutex
	got []sent
	err error
}

func (q *fakeQueue) Send(_ context.Context, from string, to []string, msg io.Reader) error {
	if q.err != nil {
		return q.err
	}
	b, _ := io.ReadAll(msg)
	q.mu.Lock()
	defer q.mu.Unlock()
	q.got = append(q.got, sent{from, to, b})
	return nil
}

type fixture struct {
	addr   string
	client *tls.Config
	local  *fakeDeliverer
	queue  *fakeQueue
}

func start(t testing.TB, configure func(*Server)) *fixture {
	t.Helper()
	cert, pool := outboundtest.SelfSigned(t)
	f := &fixture{client: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}, local: &fakeDeliverer{}, queue: &fakeQueue{}}
	s := &Server{
		Hostname:  "mail.example.org",
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
		Domains:   []string{"example.org", "example.net"},
		Auth:      fakeAuth{"alice": "wonderland", "bob": "builder"},
		UserExists: func(_ context.Context, u string) (bool, error) {
			return u == "alice" || u == "bob", nil
		},
		Local:           f.local,
		Outbound:        f.queue,
		MaxMessageBytes: 1 << 20,
		Log:             slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if configure != nil {
		configure(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return f
}

// dial connects with STARTTLS (tlsMode "starttls"), TLS ("implicit") or
// in clear ("none").
func (f *fixture) dial(t *testing.T, tlsMode string) *smtp.Client {
	t.Helper()
	var c *smtp.Client
	var err error
	switch tlsMode {
	case "starttls":
		c, err = smtp.DialStartTLS(f.addr, f.client)
	case "implicit":
		c, err = smtp.DialTLS(f.addr, f.client)
	default:
		c, err = smtp.Dial(f.addr)
	}
	if err != nil {
		t.Fatalf("dial %s: %v", tlsMode, err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	return c
}

func code(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

func send(c *smtp.Client, from string, to []string, body string) error {
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, body); err != nil {
		return err
	}
	return w.Close()
}

const msg = "From: alice@example.org\r\nSubject: hi\r\n\r\nhello\r\n"

func TestAuthNeedsTLS(t *testing.T) {
	f := start(t, nil)
	c := f.dial(t, "none")
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("AUTH offered before TLS on an untrusted listener")
	}
	err := c.Auth(sasl.NewPlainClient("", "alice", "wonderland"))
	if code(err) != 523 {
		t.Fatalf("AUTH before TLS: %v, want 523", err)
	}
	if err := c.Mail("alice@example.org", nil); code(err) != 530 {
		t.Fatalf("MAIL without auth: %v, want 530", err)
	}
}

func TestAuthTable(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mode     string
		insecure bool
		mech     sasl.Client
		want     int // 0 = success
	}{
		{"plain after starttls", "starttls", false, sasl.NewPlainClient("", "alice", "wonderland"), 0},
		{"login after starttls", "starttls", false, sasl.NewLoginClient("bob", "builder"), 0},
		{"plain implicit tls", "implicit", false, sasl.NewPlainClient("", "alice", "wonderland"), 0},
		{"wrong password", "starttls", false, sasl.NewPlainClient("", "alice", "nope"), 535},
		{"login wrong password", "starttls", false, sasl.NewLoginClient("bob", "x"), 535},
		{"authzid of someone else", "starttls", false, sasl.NewPlainClient("bob", "alice", "wonderland"), 535},
		{"rate limited", "starttls", false, sasl.NewPlainClient("", "locked", "x"), 454},
		{"trusted listener in clear", "none", true, sasl.NewPlainClient("", "alice", "wonderland"), 0},
		{"untrusted listener in clear", "none", false, sasl.NewPlainClient("", "alice", "wonderland"), 523},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := start(t, func(s *Server) {
				s.AllowInsecureAuth = tc.insecure
				s.ImplicitTLS = tc.mode == "implicit"
			})
			c := f.dial(t, tc.mode)
			err := c.Auth(tc.mech)
			if code(err) != tc.want || (tc.want == 0 && err != nil) {
				t.Fatalf("AUTH: %v, want code %d", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "/secret/path") {
				t.Errorf("internal error text leaked to client: %v", err)
			}
		})
	}
}

func login(t *testing.T, f *fixture, user, pass string) *smtp.Client {
	t.Helper()
	c := f.dial(t, "starttls")
	if err := c.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
		t.Fatalf("AUTH %s: %v", user, err)
	}
	return c
}

func TestSenderAddresses(t *testing.T) {
	f := start(t, nil)
	for _, tc := range []struct {
		from string
		want int
	}{
		{"alice@example.org", 0},
		{"Alice@EXAMPLE.org", 0},
		{"alice+lists@example.net", 0},
		{"bob@example.org", 553},
		{"alice@evil.test", 553},
		{"alicex@example.org", 553},
		{"", 553},
	} {
		c := login(t, f, "alice", "wonderland")
		err := c.Mail(tc.from, nil)
		if code(err) != tc.want || (tc.want == 0 && err != nil) {
			t.Errorf("MAIL FROM:<%s>: %v, want %d", tc.from, err, tc.want)
		}
		c.Close()
	}
}

func TestLocalAndRemoteRecipients(t *testing.T) {
	f := start(t, nil)
	c := login(t, f, "alice", "wonderland")
	err := send(c, "alice@example.org", []string{"bob+work@example.org", "carol@remote.test", "dave@remote.test"}, msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.local.got) != 1 {
		t.Fatalf("local deliveries %d, want 1", len(f.local.got))
	}
	env := f.local.got[0].env
	if env.User != "bob" || env.Detail != "work" || env.To != "bob+work@example.org" || env.From != "alice@example.org" {
		t.Errorf("envelope %+v", env)
	}
	if len(f.queue.got) != 1 || strings.Join(f.queue.got[0].to, ",") != "carol@remote.test,dave@remote.test" {
		t.Fatalf("queued %+v", f.queue.got)
	}
	got := string(f.queue.got[0].msg)
	for _, want := range []string{"Received: from client.test (127.0.0.1)", "with ESMTPSA id", "Message-ID: <", "Date: ", "\r\nSubject: hi\r\n\r\nhello\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("relayed message lacks %q:\n%s", want, got)
		}
	}
	// Unknown local user is refused at RCPT.
	if err := c.Mail("alice@example.org", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("nosuch@example.org", nil); code(err) != 550 {
		t.Errorf("RCPT unknown local user: %v, want 550", err)
	}
}

func TestLocalFailures(t *testing.T) {
	f := start(t, nil)
	f.local.fail = map[string]error{"bob": &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "go away"}}
	c := login(t, f, "alice", "wonderland")
	// Only recipient refused: the client gets the reason.
	err := send(c, "alice@example.org", []string{"bob@example.org"}, msg)
	if code(err) != 550 || !strings.Contains(err.Error(), "go away") {
		t.Fatalf("rejected by Sieve: %v", err)
	}
	// Accepted for alice, failed for bob: bob's copy goes to the queue.
	if err := send(c, "alice@example.org", []string{"alice@example.org", "bob@example.org"}, msg); err != nil {
		t.Fatalf("partial failure must still be accepted: %v", err)
	}
	if len(f.queue.got) != 1 || f.queue.got[0].to[0] != "bob@example.org" {
		t.Fatalf("failed local recipient not handed to the queue: %+v", f.queue.got)
	}
	// Queue broken: a temporary error naming this server, no internals.
	f.queue.err = errors.New("disk full at /var/spool")
	err = send(c, "alice@example.org", []string{"x@remote.test"}, msg)
	if code(err) != 451 || strings.Contains(err.Error(), "/var/spool") || !strings.Contains(err.Error(), "mail.example.org") {
		t.Fatalf("queue failure: %v", err)
	}
}

func TestSizeLimit(t *testing.T) {
	f := start(t, nil)
	c := login(t, f, "alice", "wonderland")
	if ok, v := c.Extension("SIZE"); !ok || v != "1048576" {
		t.Errorf("SIZE extension %v %q", ok, v)
	}
	big := msg + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", (1<<20)/64+10)
	err := send(c, "alice@example.org", []string{"bob@example.org"}, big)
	if code(err) != 552 || !strings.Contains(err.Error(), "mail.example.org: message exceeds 1 MB limit") {
		t.Fatalf("over-size DATA: %v", err)
	}
	if len(f.local.got) != 0 {
		t.Fatal("over-size message delivered")
	}
	// A client that declares the size (RFC 1870 SIZE=) is refused at
	// MAIL already (go-smtp answers this one itself).
	if err := c.Mail("alice@example.org", &smtp.MailOptions{Size: 2 << 20}); code(err) != 552 {
		t.Errorf("MAIL SIZE= over the limit: %v", err)
	}
	c.Reset()
	// The session is still usable.
	if err := send(c, "alice@example.org", []string{"bob@example.org"}, msg); err != nil {
		t.Fatalf("after 552: %v", err)
	}
}

func TestTrustedNetworkRelays(t *testing.T) {
	f := start(t, func(s *Server) { s.TrustedNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} })
	c := f.dial(t, "none")
	if err := send(c, "anyone@elsewhere.test", []string{"carol@remote.test"}, msg); err != nil {
		t.Fatalf("trusted relay: %v", err)
	}
	if len(f.queue.got) != 1 || f.queue.got[0].from != "anyone@elsewhere.test" {
		t.Fatalf("queued %+v", f.queue.got)
	}
	if !bytes.Contains(f.queue.got[0].msg, []byte("with ESMTP id")) {
		t.Errorf("Received: field:\n%s", f.queue.got[0].msg)
	}
}

func TestNoRelayWithoutQueue(t *testing.T) {
	f := start(t, func(s *Server) { s.Outbound = nil })
	c := login(t, f, "alice", "wonderland")
	c.Mail("alice@example.org", nil)
	if err := c.Rcpt("x@remote.test", nil); code(err) != 550 {
		t.Fatalf("remote RCPT without a queue: %v", err)
	}
}

func TestShutdown(t *testing.T) {
	s := &Server{Hostname: "h", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
}

func TestShutdownClosesIdleClientsAtDeadline(t *testing.T) {
	var srv *Server
	f := start(t, func(s *Server) { srv = s })
	c := f.dial(t, "none") // greeted, then idle
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	srv.Shutdown(ctx)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Shutdown took %v", d)
	}
	if err := c.Noop(); err == nil {
		t.Fatal("idle client still connected after the shutdown deadline")
	}
}
