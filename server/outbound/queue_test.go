package outbound

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"mailmig/server/msgspool"
	"mailmig/server/outbound/outboundtest"
)

const testMsg = "From: alice@example.org\r\nTo: bob@remote.test\r\nSubject: hello there\r\n\r\nbody line\r\n"

// fakeLocal records local deliveries for addresses in example.org.
type fakeLocal struct {
	mu   sync.Mutex
	got  map[string][]string
	fail error
}

func (l *fakeLocal) IsLocal(_ context.Context, addr string) bool {
	return strings.HasSuffix(addr, "@example.org")
}

func (l *fakeLocal) DeliverLocal(_ context.Context, from, to string, msg msgspool.Source) error {
	if l.fail != nil {
		return l.fail
	}
	b, _ := msgspool.ReadAll(msg)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.got == nil {
		l.got = map[string][]string{}
	}
	l.got[to] = append(l.got[to], string(b))
	return nil
}

func (l *fakeLocal) messages(to string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.got[to]...)
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newQueue(t *testing.T, sink *outboundtest.Sink, local LocalDelivery) *Queue {
	t.Helper()
	q := &Queue{
		Dir:      t.TempDir(),
		Hostname: "mail.example.org",
		Local:    local,
		Retry:    []time.Duration{20 * time.Millisecond},
		Window:   time.Hour,
		Log:      quietLog(),
	}
	if sink != nil {
		q.Relay = Smarthost{Addr: sink.Addr, TLS: "none", Timeout: 5 * time.Second}
		if sink.ClientTLS != nil {
			q.Relay.TLS = "starttls"
			q.Relay.TLSConfig = sink.ClientTLS
		}
	}
	return q
}

func TestRelayStartTLSAuth(t *testing.T) {
	sink := outboundtest.Start(t, outboundtest.Options{TLS: true, Username: "relayuser", Password: "s3cret"})
	q := newQueue(t, sink, &fakeLocal{})
	q.Relay.Username, q.Relay.Password = "relayuser", "s3cret"
	ctx := context.Background()
	if err := q.Send(ctx, "alice@example.org", []string{"bob@remote.test", "carol@remote.test"}, strings.NewReader(testMsg)); err != nil {
		t.Fatal(err)
	}
	if _, err := q.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	msgs := sink.Messages()
	if len(msgs) != 1 {
		t.Fatalf("sink got %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if !m.TLS || m.User != "relayuser" || m.From != "alice@example.org" || len(m.To) != 2 {
		t.Errorf("got tls=%v user=%q from=%q to=%v", m.TLS, m.User, m.From, m.To)
	}
	if string(m.Data) != testMsg {
		t.Errorf("data changed in transit:\n%q", m.Data)
	}
	if n, _ := q.Len(); n != 0 {
		t.Errorf("queue still holds %d entries after delivery", n)
	}
}

func TestRefuseCredentialsWithoutTLS(t *testing.T) {
	sink := outboundtest.Start(t, outboundtest.Options{})
	q := newQueue(t, sink, &fakeLocal{})
	q.Relay.Username, q.Relay.Password = "u", "p"
	ctx := context.Background()
	if err := q.Send(ctx, "alice@example.org", []string{"bob@remote.test"}, strings.NewReader(testMsg)); err != nil {
		t.Fatal(err)
	}
	q.RunOnce(ctx)
	if len(sink.Messages()) != 0 {
		t.Fatal("relayed with credentials over a clear connection")
	}
	if n, _ := q.Len(); n != 1 {
		t.Fatalf("queue has %d entries, want the message kept for retry", n)
	}
}

// parseDSN checks the structure of an RFC 3464 report and returns its
// text part and delivery-status part.
func parseDSN(t *testing.T, raw string) (text, status string) {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		t.Fatalf("DSN does not parse: %v\n%s", err, raw)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("DSN content type %q %v (%v)", mt, params, err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	var types []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("DSN part: %v", err)
		}
		b, _ := io.ReadAll(p)
		ct := p.Header.Get("Content-Type")
		types = append(types, strings.Split(ct, ";")[0])
		switch {
		case strings.HasPrefix(ct, "text/plain"):
			text = string(b)
		case ct == "message/delivery-status":
			status = string(b)
		}
	}
	want := []string{"text/plain", "message/delivery-status", "text/rfc822-headers"}
	if strings.Join(types, ",") != strings.Join(want, ",") {
		t.Fatalf("DSN parts %v, want %v", types, want)
	}
	return text, status
}

func TestPermanentRefusalBouncesAtOnce(t *testing.T) {
	sink := outboundtest.Start(t, outboundtest.Options{Rcpt: func(to string) error {
		if to == "nobody@remote.test" {
			return outboundtest.ErrRefused
		}
		return nil
	}})
	local := &fakeLocal{}
	q := newQueue(t, sink, local)
	ctx := context.Background()
	if err := q.Send(ctx, "alice@example.org", []string{"nobody@remote.test", "bob@remote.test"}, strings.NewReader(testMsg)); err != nil {
		t.Fatal(err)
	}
	q.RunOnce(ctx) // relays to bob, refuses nobody, queues the DSN
	q.RunOnce(ctx) // delivers the DSN locally
	if got := sink.Messages(); len(got) != 1 || len(got[0].To) != 1 || got[0].To[0] != "bob@remote.test" {
		t.Fatalf("sink got %+v", got)
	}
	dsns := local.messages("alice@example.org")
	if len(dsns) != 1 {
		t.Fatalf("sender got %d bounces, want 1", len(dsns))
	}
	text, status := parseDSN(t, dsns[0])
	for _, want := range []string{"sink.test refused the message: 550 5.1.1 no such user here", "<nobody@remote.test>", "Subject of your message: hello there"} {
		if !strings.Contains(text, want) {
			t.Errorf("DSN text lacks %q:\n%s", want, text)
		}
	}
	for _, want := range []string{"Final-Recipient: rfc822; nobody@remote.test", "Action: failed", "Status: 5.1.1", "Remote-MTA: dns; sink.test", "Diagnostic-Code: smtp; 550 5.1.1 no such user here"} {
		if !strings.Contains(status, want) {
			t.Errorf("delivery-status lacks %q:\n%s", want, status)
		}
	}
	if strings.Contains(status, "bob@remote.test") {
		t.Errorf("DSN reports the delivered recipient:\n%s", status)
	}
	if n, _ := q.Len(); n != 0 {
		t.Errorf("queue holds %d entries", n)
	}
}

func TestRetryThenExpireBounces(t *testing.T) {
	sink := outboundtest.Start(t, outboundtest.Options{})
	addr := sink.Addr
	sink.Close() // smarthost down
	local := &fakeLocal{}
	q := newQueue(t, nil, local)
	q.Relay = Smarthost{Addr: addr, TLS: "none", Timeout: time.Second}
	now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	q.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	q.Retry = []time.Duration{time.Minute, 10 * time.Minute}
	q.Window = time.Hour
	ctx := context.Background()
	if err := q.Send(ctx, "alice@example.org", []string{"bob@remote.test"}, strings.NewReader(testMsg)); err != nil {
		t.Fatal(err)
	}
	next, err := q.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(time.Minute); !next.Equal(want) {
		t.Fatalf("next attempt %v, want %v", next, want)
	}
	// Not due yet: nothing happens.
	advance(30 * time.Second)
	if n2, _ := q.RunOnce(ctx); !n2.Equal(next) {
		t.Fatalf("entry attempted before it was due")
	}
	advance(30 * time.Second)
	next, _ = q.RunOnce(ctx)
	if want := now.Add(10 * time.Minute); !next.Equal(want) {
		t.Fatalf("second retry at %v, want %v (schedule's last step repeats)", next, want)
	}
	if len(local.messages("alice@example.org")) != 0 {
		t.Fatal("bounced before the window closed")
	}
	// A fresh Queue on the same spool (a restart) takes over.
	q2 := &Queue{Dir: q.Dir, Hostname: q.Hostname, Local: local, Relay: q.Relay, Retry: q.Retry, Window: q.Window, Log: q.Log, Now: q.Now}
	advance(time.Hour)
	q2.RunOnce(ctx)
	q2.RunOnce(ctx)
	dsns := local.messages("alice@example.org")
	if len(dsns) != 1 {
		t.Fatalf("sender got %d bounces after the window, want 1", len(dsns))
	}
	text, status := parseDSN(t, dsns[0])
	if !strings.Contains(text, "connect to smarthost "+addr) || !strings.Contains(text, "given up") {
		t.Errorf("DSN text does not say which server failed and why:\n%s", text)
	}
	if !strings.Contains(status, "Status: 4.4.1") || !strings.Contains(status, "Remote-MTA: dns; 127.0.0.1") {
		t.Errorf("delivery-status:\n%s", status)
	}
	if n, _ := q2.Len(); n != 0 {
		t.Errorf("queue holds %d entries", n)
	}
}

func TestTemporaryRefusalRetriesThenDelivers(t *testing.T) {
	var mu sync.Mutex
	busy := true
	sink := outboundtest.Start(t, outboundtest.Options{Rcpt: func(string) error {
		mu.Lock()
		defer mu.Unlock()
		if busy {
			return outboundtest.ErrBusy
		}
		return nil
	}})
	q := newQueue(t, sink, &fakeLocal{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx) }()
	if err := q.Send(ctx, "alice@example.org", []string{"bob@remote.test"}, strings.NewReader(testMsg)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if len(sink.Messages()) != 0 {
		t.Fatal("delivered while the relay said 451")
	}
	mu.Lock()
	busy = false
	mu.Unlock()
	if got := sink.Wait(1, 5*time.Second); len(got) != 1 {
		t.Fatalf("not delivered after the relay recovered: %d", len(got))
	}
	cancel()
	<-done
}

func TestNullSenderNeverBounces(t *testing.T) {
	sink := outboundtest.Start(t, outboundtest.Options{Rcpt: func(string) error { return outboundtest.ErrRefused }})
	local := &fakeLocal{}
	q := newQueue(t, sink, local)
	ctx := context.Background()
	q.Send(ctx, "", []string{"x@remote.test"}, strings.NewReader(testMsg))
	q.RunOnce(ctx)
	q.RunOnce(ctx)
	if n, _ := q.Len(); n != 0 || len(local.got) != 0 {
		t.Fatalf("queue %d, local %v: a bounce bounced", n, local.got)
	}
}

func TestOrphanAndCorruptEntries(t *testing.T) {
	q := newQueue(t, nil, &fakeLocal{})
	if err := q.init(); err != nil {
		t.Fatal(err)
	}
	orphan := q.msgPath("1.orphan")
	os.WriteFile(orphan, []byte(testMsg), 0o600)
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(orphan, old, old)
	os.WriteFile(q.metaPath("2.bad"), []byte("{not json"), 0o600)
	if _, err := q.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("old uncommitted message file kept: %v", err)
	}
	if _, err := os.Stat(q.metaPath("2.bad")); err != nil {
		t.Errorf("corrupt entry removed (must stay for the postmaster): %v", err)
	}
}

func TestHeaderOf(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"A: b\r\n\r\nbody", "A: b\r\n"},
		{"A: b\n\nbody", "A: b\n"},
		{"A: b\r\n", "A: b\r\n"},
	} {
		if got := string(headerOf([]byte(tc.in))); got != tc.want {
			t.Errorf("headerOf(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if !bytes.Contains(buildDSN("h", time.Now(), &item{ID: "x", From: "a@b", Failed: []failure{{Rcpt: "c@d", Text: "t"}}}, []byte("Subject: s\r\n\r\n")), []byte("Reporting-MTA: dns; h")) {
		t.Error("DSN lacks Reporting-MTA")
	}
}

// redirectLocal bounces messages between two local addresses through
// the queue, as two users redirecting to each other would.
type redirectLocal struct {
	fakeLocal
	q    *Queue
	hops int
}

func (r *redirectLocal) DeliverLocal(ctx context.Context, from, to string, msg msgspool.Source) error {
	next := map[string]string{"ping@example.org": "pong@example.org", "pong@example.org": "ping@example.org"}[to]
	if next == "" {
		return r.fakeLocal.DeliverLocal(ctx, from, to, msg)
	}
	r.hops++
	return r.q.Send(ctx, from, []string{next}, msgspool.NewReader(msg))
}

func TestRedirectLoopEnds(t *testing.T) {
	r := &redirectLocal{}
	q := newQueue(t, nil, r)
	r.q = q
	ctx := context.Background()
	q.Send(ctx, "alice@example.org", []string{"ping@example.org"}, strings.NewReader(testMsg))
	for i := 0; i < 3*MaxHops; i++ {
		if n, _ := q.Len(); n == 0 {
			break
		}
		q.RunOnce(ctx)
	}
	if n, _ := q.Len(); n != 0 {
		t.Fatalf("loop still running after %d hops", r.hops)
	}
	if r.hops != MaxHops {
		t.Errorf("%d hops, want %d", r.hops, MaxHops)
	}
	dsns := r.messages("alice@example.org")
	if len(dsns) != 1 {
		t.Fatalf("sender got %d bounces", len(dsns))
	}
	_, status := parseDSN(t, dsns[0])
	mustHave := []string{"Status: 5.4.6", "Diagnostic-Code: smtp; 554 5.4.6 mail loop"}
	for _, w := range mustHave {
		if !strings.Contains(status, w) {
			t.Errorf("DSN lacks %q:\n%s", w, status)
		}
	}
}

// TestBounceToRemoteSender: a redirect from outside that the smarthost
// refuses bounces to the outside sender through the smarthost, with a
// null reverse-path (RFC 5321 §4.5.5).
func TestBounceToRemoteSender(t *testing.T) {
	sink := outboundtest.Start(t, outboundtest.Options{Rcpt: func(to string) error {
		if to == "gone@remote.test" {
			return outboundtest.ErrRefused
		}
		return nil
	}})
	q := newQueue(t, sink, &fakeLocal{})
	ctx := context.Background()
	q.Send(ctx, "someone@elsewhere.test", []string{"gone@remote.test"}, strings.NewReader(testMsg))
	q.RunOnce(ctx)
	q.RunOnce(ctx)
	msgs := sink.Messages()
	if len(msgs) != 1 {
		t.Fatalf("sink got %d messages, want the bounce", len(msgs))
	}
	if m := msgs[0]; m.From != "" || len(m.To) != 1 || m.To[0] != "someone@elsewhere.test" {
		t.Fatalf("bounce envelope %q -> %q", m.From, m.To)
	}
	parseDSN(t, string(msgs[0].Data))
}
