package imap

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mailmig/mailstore"
)

func TestParseModseqFile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		err     bool
		uv      uint32
		highest uint64
		entries map[uint32]modseqEntry
	}{
		{name: "empty", in: "", err: true},
		{name: "foreign", in: "3 V1234 N5\n", err: true},
		{name: "version 2", in: "mailmig-modseq 2 1 5\n", err: true},
		{name: "zero uidvalidity", in: "mailmig-modseq 1 0 5\n", err: true},
		{name: "header only", in: "mailmig-modseq 1 77 5\n", uv: 77, highest: 5, entries: map[uint32]modseqEntry{}},
		{name: "entries", in: "mailmig-modseq 1 77 9\n1 5 a\n2 9 ff\n", uv: 77, highest: 9,
			entries: map[uint32]modseqEntry{1: {5, 0xa}, 2: {9, 0xff}}},
		{name: "journal overrides", in: "mailmig-modseq 1 77 9\n1 5 a\n2 9 ff\n2 12 1\n-1\n3 13 2\nH 14\n", uv: 77, highest: 14,
			entries: map[uint32]modseqEntry{2: {12, 1}, 3: {13, 2}}},
		{name: "entry raises highest", in: "mailmig-modseq 1 77 3\n1 20 a\n", uv: 77, highest: 20,
			entries: map[uint32]modseqEntry{1: {20, 0xa}}},
		{name: "torn last line", in: "mailmig-modseq 1 77 9\n1 5 a\n2 11", uv: 77, highest: 9,
			entries: map[uint32]modseqEntry{1: {5, 0xa}}},
		{name: "garbage stops", in: "mailmig-modseq 1 77 9\n1 5 a\nxx yy zz\n2 30 b\n", uv: 77, highest: 9,
			entries: map[uint32]modseqEntry{1: {5, 0xa}}},
		{name: "uid zero stops", in: "mailmig-modseq 1 77 9\n0 5 a\n", uv: 77, highest: 9, entries: map[uint32]modseqEntry{}},
		{name: "modseq beyond 63 bits stops", in: "mailmig-modseq 1 77 9\n1 18446744073709551615 a\n", uv: 77, highest: 9, entries: map[uint32]modseqEntry{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mf, err := parseModseqFile([]byte(tc.in))
			if tc.err {
				if err == nil {
					t.Fatalf("parsed %+v, want error", mf)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if mf.uidValidity != tc.uv || mf.highest != tc.highest || fmt.Sprint(mf.entries) != fmt.Sprint(tc.entries) {
				t.Errorf("got uv %d highest %d %v; want %d %d %v", mf.uidValidity, mf.highest, mf.entries, tc.uv, tc.highest, tc.entries)
			}
		})
	}
}

func FuzzParseModseqFile(f *testing.F) {
	f.Add([]byte("mailmig-modseq 1 77 9\n1 5 a\n2 9 ff\n2 12 1\n-1\nH 14\n"))
	f.Add([]byte("mailmig-modseq 1 1 1\n"))
	f.Add([]byte("mailmig-modseq 1 4294967295 9223372036854775807\n-4294967295\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		mf, err := parseModseqFile(data)
		if err != nil {
			return
		}
		for uid, e := range mf.entries {
			if uid == 0 || e.modseq > mf.highest {
				t.Fatalf("entry %d %+v with highest %d", uid, e, mf.highest)
			}
		}
	})
}

// restart stops ts's server, runs whileDown, and starts a new server on
// the same Maildirs (a new address).
func (ts *testServer) restart(t testing.TB, whileDown func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if whileDown != nil {
		whileDown()
	}
	srv := New(ts.srv.opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln, ListenerOptions{Trusted: true})
	ts.mu.Lock()
	ts.srv, ts.addr = srv, ln.Addr().String()
	ts.mu.Unlock()
}

func (ts *testServer) address() string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.addr
}

// TestModseqKeptAcrossRestart: a restart keeps every unchanged message's
// MODSEQ and HIGHESTMODSEQ; what changed while the server was down (flags,
// an expunge, a delivery by another process) is above the old
// HIGHESTMODSEQ, and CHANGEDSINCE returns exactly that.
func TestModseqKeptAcrossRestart(t *testing.T) {
	ts := startServer(t)
	c := ts.login(t, "alice", nil)
	for i := 1; i <= 4; i++ {
		appendMsg(t, c, "INBOX", testMessage(fmt.Sprintf("m%d", i), "body\r\n"))
	}
	c.Logout().Wait()

	fetchAll := func() (uint64, map[uint32]uint64) {
		rc := dialRaw(t, ts.address())
		rc.send("a LOGIN alice pw-alice\r\nb SELECT INBOX (CONDSTORE)\r\nc UID FETCH 1:* (MODSEQ)\r\nd LOGOUT\r\n")
		var hms uint64
		got := map[uint32]uint64{}
		for _, l := range rc.until("d ") {
			fmt.Sscanf(l, "* OK [HIGHESTMODSEQ %d]", &hms)
			var seq, uid uint32
			var ms uint64
			if n, _ := fmt.Sscanf(l, "* %d FETCH (UID %d MODSEQ (%d))", &seq, &uid, &ms); n == 3 {
				got[uid] = ms
			}
		}
		return hms, got
	}
	hms0, ms0 := fetchAll()
	if hms0 == 0 || len(ms0) != 4 {
		t.Fatalf("HIGHESTMODSEQ %d, MODSEQs %v", hms0, ms0)
	}

	// Unchanged folder: everything kept.
	ts.restart(t, nil)
	hms1, ms1 := fetchAll()
	if hms1 != hms0 || fmt.Sprint(ms1) != fmt.Sprint(ms0) {
		t.Fatalf("after a restart HIGHESTMODSEQ %d %v, before %d %v", hms1, ms1, hms0, ms0)
	}

	// Changes by another process while the server is down.
	var newUID uint32
	ts.restart(t, func() {
		st := ts.store(t, "alice")
		f, err := st.Folder("INBOX")
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if _, err := f.StoreFlags(ctx, []uint32{2}, mailstore.FlagAdd, []string{mailstore.FlagFlagged}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Expunge(ctx, []uint32{3}); err != nil {
			t.Fatal(err)
		}
		if newUID, err = f.Append(ctx, strings.NewReader(testMessage("m5", "x\r\n")), nil, time.Now()); err != nil {
			t.Fatal(err)
		}
	})
	hms2, ms2 := fetchAll()
	if hms2 <= hms0 {
		t.Errorf("HIGHESTMODSEQ %d after changes, was %d", hms2, hms0)
	}
	for uid, v := range ms2 {
		switch uid {
		case 1, 4:
			if v != ms0[uid] {
				t.Errorf("unchanged UID %d: MODSEQ %d, was %d", uid, v, ms0[uid])
			}
		case 2, newUID:
			if v <= hms0 || v > hms2 {
				t.Errorf("UID %d changed while down: MODSEQ %d, old HIGHESTMODSEQ %d, new %d", uid, v, hms0, hms2)
			}
		default:
			t.Errorf("unexpected UID %d", uid)
		}
	}

	rc := dialRaw(t, ts.address())
	rc.send(fmt.Sprintf("a LOGIN alice pw-alice\r\nb SELECT INBOX (CONDSTORE)\r\nc UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)\r\n", hms0))
	var changed []uint32
	for _, l := range rc.until("c ") {
		var seq, uid uint32
		if n, _ := fmt.Sscanf(l, "* %d FETCH (UID %d", &seq, &uid); n == 2 {
			changed = append(changed, uid)
		}
	}
	if fmt.Sprint(changed) != fmt.Sprint([]uint32{2, newUID}) {
		t.Errorf("CHANGEDSINCE %d gave UIDs %v, want [2 %d]", hms0, changed, newUID)
	}

	// A garbled file costs a resync (everything above the old highest),
	// never a lower value.
	ts.restart(t, func() {
		dir := ts.dir + "/alice/Maildir/" + modseqFileName
		if err := os.WriteFile(dir, []byte("junk\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	})
	hms3, ms3 := fetchAll()
	for uid, v := range ms3 {
		if v < ms2[uid] {
			t.Errorf("after a garbled file UID %d MODSEQ %d went below %d", uid, v, ms2[uid])
		}
	}
	if hms3 < hms2 {
		t.Errorf("after a garbled file HIGHESTMODSEQ %d went below %d", hms3, hms2)
	}
}

// stressConn is a CONDSTORE session of TestModseqConcurrentAndRestart; it
// returns errors instead of failing the test (it runs in goroutines).
type stressConn struct {
	nc   net.Conn
	r    *bufio.Reader
	tag  int
	view []uint32 // UID by sequence number - 1 (0: not known yet)
	// Highest values seen, kept across reconnects: they must never go down.
	seen         map[uint32]uint64
	book         *flagBook
	highest      uint64 // INBOX's
	otherHighest uint64 // Other's, from STATUS
}

// flagBook is what every session saw of a message at a modseq: two
// sessions seeing the same UID at the same MODSEQ must see the same
// flags (a modseq names one state of the message).
type flagBook struct {
	mu    sync.Mutex
	flags map[[2]uint64]string
}

var flagsItemRE = regexp.MustCompile(`FLAGS \(([^)]*)\)`)

func (b *flagBook) check(uid uint32, modseq uint64, flags string) error {
	if b == nil {
		return nil
	}
	f := strings.Fields(flags)
	f = slices.DeleteFunc(f, func(s string) bool { return s == `\Recent` })
	slices.Sort(f)
	norm := strings.Join(f, " ")
	b.mu.Lock()
	defer b.mu.Unlock()
	k := [2]uint64{uint64(uid), modseq}
	if old, ok := b.flags[k]; ok && old != norm {
		return fmt.Errorf("UID %d MODSEQ %d has flags (%s) here and (%s) elsewhere", uid, modseq, norm, old)
	}
	b.flags[k] = norm
	return nil
}

var (
	fetchLineRE  = regexp.MustCompile(`^\* (\d+) FETCH \((.*)\)$`)
	uidItemRE    = regexp.MustCompile(`(?:^| )UID (\d+)`)
	modseqItemRE = regexp.MustCompile(`MODSEQ \((\d+)\)`)
	numRespRE    = regexp.MustCompile(`^\* (\d+) (EXISTS|EXPUNGE)$`)
	hmsRE        = regexp.MustCompile(`HIGHESTMODSEQ (\d+)`)
)

func (sc *stressConn) dial(addr string) error {
	if sc.nc != nil {
		sc.nc.Close()
	}
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	sc.nc, sc.r, sc.view = nc, bufio.NewReader(nc), nil
	if _, err := sc.r.ReadString('\n'); err != nil {
		return err
	}
	for _, c := range []string{"LOGIN alice pw-alice", "SELECT INBOX (CONDSTORE)"} {
		if _, err := sc.cmd(c, ""); err != nil {
			return err
		}
	}
	return nil
}

// cmd sends one command (with lit as a synchronizing literal after the
// command when not empty), checks every untagged response against the
// session's view, and returns the tagged response.
func (sc *stressConn) cmd(c, lit string) (string, error) {
	sc.tag++
	tag := "t" + strconv.Itoa(sc.tag)
	line := tag + " " + c
	if lit != "" {
		line += " {" + strconv.Itoa(len(lit)) + "}"
	}
	if _, err := io.WriteString(sc.nc, line+"\r\n"); err != nil {
		return "", err
	}
	for i := 0; i < 100000; i++ {
		l, err := sc.r.ReadString('\n')
		if err != nil {
			return "", err
		}
		l = strings.TrimRight(l, "\r\n")
		switch {
		case strings.HasPrefix(l, "+"):
			if _, err := io.WriteString(sc.nc, lit+"\r\n"); err != nil {
				return "", err
			}
		case strings.HasPrefix(l, tag+" "):
			resp := l[len(tag)+1:]
			if !strings.HasPrefix(resp, "OK") && !strings.HasPrefix(resp, "NO [EXPUNGEISSUED]") {
				return "", fmt.Errorf("%s: %s", c, l)
			}
			if m := hmsRE.FindStringSubmatch(l); m != nil {
				if err := sc.sawHighest(m[1], l); err != nil {
					return "", err
				}
			}
			return resp, nil
		case strings.HasPrefix(l, "* "):
			if err := sc.untagged(l); err != nil {
				return "", fmt.Errorf("after %s: %w", c, err)
			}
		default:
			return "", fmt.Errorf("%s: unexpected line %q", c, l)
		}
	}
	return "", errors.New("no tagged response")
}

func (sc *stressConn) sawHighest(s, l string) error {
	v, _ := strconv.ParseUint(s, 10, 64)
	h := &sc.highest
	if strings.HasPrefix(l, "* STATUS ") {
		h = &sc.otherHighest
	}
	if v < *h {
		return fmt.Errorf("HIGHESTMODSEQ went back from %d: %q", *h, l)
	}
	*h = v
	return nil
}

func (sc *stressConn) untagged(l string) error {
	if m := numRespRE.FindStringSubmatch(l); m != nil {
		n, _ := strconv.Atoi(m[1])
		if m[2] == "EXISTS" {
			if n < len(sc.view) {
				return fmt.Errorf("%q shrinks the view of %d", l, len(sc.view))
			}
			for len(sc.view) < n {
				sc.view = append(sc.view, 0)
			}
			return nil
		}
		if n < 1 || n > len(sc.view) {
			return fmt.Errorf("%q outside the view of %d", l, len(sc.view))
		}
		sc.view = append(sc.view[:n-1], sc.view[n:]...)
		return nil
	}
	if m := fetchLineRE.FindStringSubmatch(l); m != nil {
		n, _ := strconv.Atoi(m[1])
		if n < 1 || n > len(sc.view) {
			return fmt.Errorf("%q outside the view of %d", l, len(sc.view))
		}
		u := uidItemRE.FindStringSubmatch(m[2])
		if u == nil {
			return nil
		}
		uid64, _ := strconv.ParseUint(u[1], 10, 32)
		uid := uint32(uid64)
		if old := sc.view[n-1]; old != 0 && old != uid {
			return fmt.Errorf("%q: sequence %d was UID %d", l, n, old)
		}
		sc.view[n-1] = uid
		if ms := modseqItemRE.FindStringSubmatch(m[2]); ms != nil {
			v, _ := strconv.ParseUint(ms[1], 10, 64)
			if v < sc.seen[uid] {
				return fmt.Errorf("%q: MODSEQ of UID %d went back from %d", l, uid, sc.seen[uid])
			}
			sc.seen[uid] = v
			if fl := flagsItemRE.FindStringSubmatch(m[2]); fl != nil {
				if err := sc.book.check(uid, v, fl[1]); err != nil {
					return fmt.Errorf("%q: %w", l, err)
				}
			}
		}
		return nil
	}
	if m := hmsRE.FindStringSubmatch(l); m != nil {
		return sc.sawHighest(m[1], l)
	}
	return nil
}

// TestModseqConcurrentAndRestart: sessions appending, storing, copying,
// expunging and fetching at once, across a server restart, never see a
// message's MODSEQ or the folder's HIGHESTMODSEQ go down, never get an
// EXPUNGE or FETCH outside their view, and keep each sequence number's
// UID until it is expunged. (A first round saw MODSEQ go backwards
// thousands of times in long sessions: a message expunged by another
// session was reported at the folder's base modseq.)
// Twenty sessions; two sessions that see a message at the same MODSEQ
// see the same flags. MAILMIG_MODSEQ_STRESS sets the length of each
// phase (default 5s; make test stays well under a minute).
func TestModseqConcurrentAndRestart(t *testing.T) {
	phase := 5 * time.Second
	if v := os.Getenv("MAILMIG_MODSEQ_STRESS"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatal(err)
		}
		phase = d
	}
	ts := startServer(t)
	c := ts.login(t, "alice", nil)
	for i := 0; i < 20; i++ {
		appendMsg(t, c, "INBOX", testMessage(fmt.Sprintf("seed %d", i), "body\r\n"))
	}
	if err := c.Create("Other", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	c.Logout().Wait()

	const workers = 20
	book := &flagBook{flags: map[[2]uint64]string{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	commands := 0
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			sc := &stressConn{seen: map[uint32]uint64{}, book: book}
			n := 0
			defer func() {
				mu.Lock()
				commands += n
				mu.Unlock()
				if sc.nc != nil {
					sc.nc.Close()
				}
			}()
			fail := func(err error) {
				mu.Lock()
				errs = append(errs, fmt.Errorf("worker %d: %w", w, err))
				mu.Unlock()
			}
			connected := false
			for {
				select {
				case <-stop:
					return
				default:
				}
				if !connected {
					if err := sc.dial(ts.address()); err != nil {
						time.Sleep(10 * time.Millisecond) // the server restarts
						continue
					}
					connected = true
				}
				uid := func() uint32 {
					if len(sc.view) == 0 {
						return 1
					}
					if u := sc.view[rng.IntN(len(sc.view))]; u != 0 {
						return u
					}
					return 1
				}
				var c, lit string
				switch r := rng.IntN(20); {
				case r < 3:
					c, lit = "APPEND INBOX (\\Seen)", testMessage(fmt.Sprintf("w%d n%d", w, n), "stress\r\n")
				case r < 8:
					c = fmt.Sprintf("UID STORE %d %sFLAGS (%s)", uid(), [2]string{"+", "-"}[rng.IntN(2)], []string{`\Flagged`, `\Seen`, `$Work`, `\Answered`}[rng.IntN(4)])
				case r < 10:
					c = fmt.Sprintf("UID COPY %d %s", uid(), []string{"INBOX", "Other"}[rng.IntN(2)])
				case r < 12:
					if len(sc.view) < 15 {
						c = "NOOP"
						break
					}
					c = fmt.Sprintf("UID STORE %d +FLAGS.SILENT (\\Deleted)", uid())
					if _, err := sc.cmd(c, ""); err != nil {
						connected = false
						if !isNetErr(err) {
							fail(err)
							return
						}
						continue
					}
					n++
					c = "EXPUNGE"
				case r < 14:
					c = "NOOP"
				case r < 16:
					c = "STATUS Other (MESSAGES HIGHESTMODSEQ)"
				default:
					if len(sc.view) == 0 {
						c = "NOOP"
						break
					}
					c = "FETCH 1:* (UID FLAGS MODSEQ)"
				}
				if _, err := sc.cmd(c, lit); err != nil {
					connected = false
					if !isNetErr(err) {
						fail(err)
						return
					}
					continue
				}
				n++
			}
		}(w)
	}
	time.Sleep(phase)
	ts.restart(t, nil)
	time.Sleep(phase)
	close(stop)
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if commands < 200 {
		t.Errorf("only %d commands ran", commands)
	}
	t.Logf("%d commands in two phases of %v", commands, phase)
}

// isNetErr tells a connection broken by the restart from a protocol
// failure.
func isNetErr(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.As(err, &ne) ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "BYE")
}
