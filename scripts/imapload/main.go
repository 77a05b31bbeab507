// Command imapload is the load generator of scripts/bench-imap: it fills
// Maildirs for the benchmark users, holds many IDLE connections open, and
// runs a mixed IMAP workload (SELECT, FETCH headers and bodies, STORE,
// APPEND, EXPUNGE, LOGIN/LOGOUT cycles) against any IMAP server, so the
// same numbers can be taken from mailmig and from dovecot.
//
// It speaks IMAP itself over plain TCP (a few hundred lines, no per
// connection goroutines besides the caller's) so that ten thousand idle
// connections cost the client little.
//
//	imapload populate -maildir /path/%u/Maildir -users 100 -msgs 200
//	imapload idle -addr 127.0.0.1:143 -users 100 -conns 1000 -hold 30s
//	imapload mixed -addr 127.0.0.1:143 -users 100 -clients 10 -duration 20s
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/argon2"

	"mailmig/mailstore"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: imapload populate|idle|mixed [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "populate":
		err = populate(os.Args[2:])
	case "idle":
		err = idle(os.Args[2:])
	case "mixed":
		err = mixed(os.Args[2:])
	case "hash":
		err = hash(os.Args[2:])
	case "serve":
		err = serve(os.Args[2:])
	case "populate-threads":
		err = populateThreads(os.Args[2:])
	case "sortbench":
		err = sortBench(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "imapload:", err)
		os.Exit(1)
	}
}

// hash prints a cheap argon2id PHC hash of -p (64 KiB, 1 pass): the
// benchmark gives both servers the same hash so that LOGIN measures the
// servers, not the password hashing.
func hash(args []string) error {
	fs := flag.NewFlagSet("hash", flag.ExitOnError)
	pw := fs.String("p", "pw", "password")
	fs.Parse(args)
	salt := []byte("mailmig-bench-16")
	key := argon2.IDKey([]byte(*pw), salt, 1, 64, 1, 32)
	enc := base64.RawStdEncoding
	fmt.Printf("$argon2id$v=%d$m=64,t=1,p=1$%s$%s\n", argon2.Version, enc.EncodeToString(salt), enc.EncodeToString(key))
	return nil
}

func userName(i int) string { return fmt.Sprintf("u%03d", i) }

// message returns a plausible mail of about size bytes.
func message(i, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Sender %d <sender%d@example.net>\nTo: user@example.org\nSubject: load test message %d\nDate: Wed, 07 Oct 2009 12:%02d:00 +0200\nMessage-ID: <%d.load@example.net>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n", i%50, i%50, i, i%60, i)
	line := "The quick brown fox jumps over the lazy dog, again and again.\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	return b.Bytes()
}

// populate fills each user's INBOX with msgs messages (mixed flags).
func populate(args []string) error {
	fs := flag.NewFlagSet("populate", flag.ExitOnError)
	tmpl := fs.String("maildir", "", "Maildir path template with %u")
	users := fs.Int("users", 100, "number of users u000..")
	msgs := fs.Int("msgs", 200, "messages per INBOX")
	size := fs.Int("size", 3000, "approximate message size")
	fs.Parse(args)
	if *tmpl == "" {
		return errors.New("-maildir is required")
	}
	ctx := context.Background()
	flagSets := [][]string{nil, {mailstore.FlagSeen}, {mailstore.FlagSeen}, {mailstore.FlagSeen, mailstore.FlagAnswered}, {mailstore.FlagFlagged}}
	for u := 0; u < *users; u++ {
		root := strings.ReplaceAll(*tmpl, "%u", userName(u))
		st, err := mailstore.Open(root, mailstore.Options{CreateRoot: true, NoFsync: true})
		if err != nil {
			return err
		}
		im, err := st.Importer("INBOX", uint32(1254900000+u))
		if err != nil {
			return err
		}
		for i := 1; i <= *msgs; i++ {
			m := message(i, *size)
			date := time.Date(2009, 10, 7, 12, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute)
			if err := im.Add(ctx, bytes.NewReader(m), int64(len(m)), uint32(i), flagSets[i%len(flagSets)], date); err != nil {
				return fmt.Errorf("%s: %w", root, err)
			}
		}
		if err := im.Commit(); err != nil {
			return err
		}
		st.Close()
	}
	return nil
}

// client is a minimal IMAP client.
type client struct {
	nc  net.Conn
	r   *bufio.Reader
	w   *bufio.Writer
	tag int
	// exists is the last EXISTS count seen.
	exists int
}

func dial(addr string) (*client, error) {
	nc, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		return nil, err
	}
	c := &client{nc: nc, r: bufio.NewReaderSize(nc, 4096), w: bufio.NewWriterSize(nc, 4096)}
	nc.SetDeadline(time.Now().Add(120 * time.Second))
	line, err := c.r.ReadString('\n')
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if !strings.HasPrefix(line, "* OK") {
		nc.Close()
		return nil, fmt.Errorf("greeting %q", line)
	}
	return c, nil
}

// readResponse reads one response line with its literals; it returns the
// line (literal contents replaced by their length) and the literal bytes.
func (c *client) readResponse() (string, int, error) {
	var sb strings.Builder
	total := 0
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return "", 0, err
		}
		sb.Write(line)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		s := strings.TrimRight(string(line), "\r\n")
		if strings.HasSuffix(s, "}") {
			if i := strings.LastIndexByte(s, '{'); i >= 0 {
				n, err := strconv.Atoi(strings.TrimSuffix(s[i+1:len(s)-1], "+"))
				if err == nil {
					if _, err := io.CopyN(io.Discard, c.r, int64(n)); err != nil {
						return "", 0, err
					}
					total += n
					continue
				}
			}
		}
		return sb.String(), total, nil
	}
}

// cmd sends a command and reads until its tagged response; it returns
// the literal bytes received.
func (c *client) cmd(format string, args ...any) (int, error) {
	c.tag++
	tag := "t" + strconv.Itoa(c.tag)
	fmt.Fprintf(c.w, tag+" "+format+"\r\n", args...)
	if err := c.w.Flush(); err != nil {
		return 0, err
	}
	return c.wait(tag)
}

func (c *client) wait(tag string) (int, error) {
	total := 0
	for {
		line, n, err := c.readResponse()
		if err != nil {
			return total, err
		}
		total += n
		if strings.HasPrefix(line, "* ") {
			if t := strings.TrimSpace(line); strings.HasSuffix(t, " EXISTS") {
				fmt.Sscanf(t, "* %d EXISTS", &c.exists)
			} else if strings.HasSuffix(t, " EXPUNGE") {
				c.exists--
			}
		}
		if strings.HasPrefix(line, tag+" ") {
			if !strings.HasPrefix(line, tag+" OK") {
				return total, fmt.Errorf("%s", strings.TrimSpace(line))
			}
			return total, nil
		}
	}
}

func (c *client) login(user, pass string) error {
	_, err := c.cmd("LOGIN %s %s", user, pass)
	return err
}

// appendMsg APPENDs with a synchronizing literal (works with any server).
func (c *client) appendMsg(mailbox string, msg []byte) error {
	c.tag++
	tag := "t" + strconv.Itoa(c.tag)
	fmt.Fprintf(c.w, "%s APPEND %s {%d}\r\n", tag, mailbox, len(msg))
	if err := c.w.Flush(); err != nil {
		return err
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+") {
		return fmt.Errorf("APPEND: %q", line)
	}
	c.w.Write(msg)
	c.w.WriteString("\r\n")
	if err := c.w.Flush(); err != nil {
		return err
	}
	_, err = c.wait(tag)
	return err
}

// idle opens conns connections, logs in, selects INBOX and IDLEs, prints
// "ready" and holds them for -hold (or until SIGINT/SIGTERM).
func idle(args []string) error {
	fs := flag.NewFlagSet("idle", flag.ExitOnError)
	addr := fs.String("addr", "", "server address")
	users := fs.Int("users", 100, "number of users")
	pass := fs.String("pass", "pw", "password of every user")
	conns := fs.Int("conns", 1000, "connections")
	par := fs.Int("parallel", 16, "connections set up at once")
	hold := fs.Duration("hold", 30*time.Second, "how long to hold the connections")
	compress := fs.Bool("compress", false, "COMPRESS=DEFLATE after login (compress.go)")
	fs.Parse(args)
	start := time.Now()
	clients := make([]*client, *conns)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, *par)
	for w := 0; w < *par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= *conns {
					return
				}
				c, err := dial(*addr)
				if err == nil {
					err = c.login(userName(i%*users), *pass)
				}
				if err == nil && *compress {
					err = c.compress()
				}
				if err == nil {
					_, err = c.cmd("SELECT INBOX")
				}
				if err == nil {
					c.tag++
					fmt.Fprintf(c.w, "t%d IDLE\r\n", c.tag)
					err = c.w.Flush()
				}
				if err == nil {
					var line string
					line, err = c.r.ReadString('\n')
					if err == nil && !strings.HasPrefix(line, "+") {
						err = fmt.Errorf("IDLE: %q", line)
					}
				}
				if err != nil {
					errs <- fmt.Errorf("connection %d: %w", i, err)
					return
				}
				c.nc.SetDeadline(time.Time{})
				c.r = nil // nothing more is read (and the inflater is freed)
				clients[i] = c
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	fmt.Printf("ready %d idle connections in %.1fs\n", *conns, time.Since(start).Seconds())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case <-time.After(*hold):
	case <-sig:
	}
	for _, c := range clients {
		c.nc.Close()
	}
	return nil
}

// op kinds of the mixed workload and their weights (of 100).
var ops = []struct {
	name   string
	weight int
}{
	{"select", 5}, {"fetch-headers", 30}, {"fetch-body", 25}, {"store", 20}, {"append", 10}, {"expunge", 5}, {"login-logout", 5},
}

type stats struct {
	mu     sync.Mutex
	count  map[string]int
	lat    map[string][]time.Duration
	errors int
	bytes  int64
}

func (s *stats) add(op string, d time.Duration, n int) {
	s.mu.Lock()
	s.count[op]++
	s.lat[op] = append(s.lat[op], d)
	s.bytes += int64(n)
	s.mu.Unlock()
}

// mixed runs the mixed workload from -clients concurrent clients.
func mixed(args []string) error {
	fs := flag.NewFlagSet("mixed", flag.ExitOnError)
	addr := fs.String("addr", "", "server address")
	users := fs.Int("users", 100, "number of users")
	pass := fs.String("pass", "pw", "password of every user")
	clients := fs.Int("clients", 10, "concurrent clients (one user each, round-robin)")
	dur := fs.Duration("duration", 20*time.Second, "how long to run")
	fs.BoolVar(&mixedCompress, "compress", false, "COMPRESS=DEFLATE after login (compress.go)")
	fs.Parse(args)
	st := &stats{count: map[string]int{}, lat: map[string][]time.Duration{}}
	deadline := time.Now().Add(*dur)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	for i := 0; i < *clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := runClient(*addr, userName(i%*users), *pass, i, deadline, st); err != nil {
				firstErr.CompareAndSwap(nil, err)
				st.mu.Lock()
				st.errors++
				st.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	total := 0
	var names []string
	for k, v := range st.count {
		total += v
		names = append(names, k)
	}
	sort.Strings(names)
	fmt.Printf("clients %d, %.1fs, %d ops, %.0f ops/s, %d client errors\n", *clients, elapsed, total, float64(total)/elapsed, st.errors)
	for _, n := range names {
		l := st.lat[n]
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		fmt.Printf("  %-14s %7d  %8.0f/s  p50 %6.2fms  p99 %6.2fms\n", n, st.count[n], float64(st.count[n])/elapsed,
			float64(l[len(l)/2].Microseconds())/1000, float64(l[len(l)*99/100].Microseconds())/1000)
	}
	fmt.Printf("TOTAL_OPS %d\n", total)
	if e := firstErr.Load(); e != nil {
		return fmt.Errorf("a client failed: %v", e)
	}
	return nil
}

func runClient(addr, user, pass string, seed int, deadline time.Time, st *stats) error {
	rng := rand.New(rand.NewPCG(uint64(seed), 42))
	connect := func() (*client, error) {
		c, err := dial(addr)
		if err != nil {
			return nil, err
		}
		if err := c.login(user, pass); err != nil {
			return nil, fmt.Errorf("login %s: %w", user, err)
		}
		if mixedCompress {
			if err := c.compress(); err != nil {
				return nil, err
			}
		}
		if _, err := c.cmd("SELECT INBOX"); err != nil {
			return nil, err
		}
		return c, nil
	}
	c, err := connect()
	if err != nil {
		return err
	}
	defer func() { c.nc.Close() }()
	msg := message(seed, 3000)
	for time.Now().Before(deadline) {
		c.nc.SetDeadline(time.Now().Add(60 * time.Second))
		w := rng.IntN(100)
		op := ops[len(ops)-1].name
		for _, o := range ops {
			if w < o.weight {
				op = o.name
				break
			}
			w -= o.weight
		}
		n := max(c.exists, 1)
		t0 := time.Now()
		got := 0
		switch op {
		case "select":
			_, err = c.cmd("SELECT INBOX")
		case "fetch-headers":
			lo := rng.IntN(n) + 1
			got, err = c.cmd("FETCH %d:%d (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE MESSAGE-ID)])", lo, min(lo+19, n))
		case "fetch-body":
			got, err = c.cmd("FETCH %d BODY.PEEK[]", rng.IntN(n)+1)
		case "store":
			sign := "+"
			if rng.IntN(2) == 0 {
				sign = "-"
			}
			_, err = c.cmd("STORE %d %sFLAGS (\\Flagged)", rng.IntN(n)+1, sign)
		case "append":
			err = c.appendMsg("INBOX", msg)
			if err == nil {
				_, err = c.cmd("NOOP")
			}
		case "expunge":
			// Expunge the newest message (appends keep the count up).
			if n > 10 {
				if _, err = c.cmd("STORE %d +FLAGS.SILENT (\\Deleted)", n); err == nil {
					_, err = c.cmd("EXPUNGE")
				}
			}
		case "login-logout":
			c.cmd("LOGOUT")
			c.nc.Close()
			c, err = connect()
			if err != nil {
				return err
			}
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", user, op, err)
		}
		st.add(op, time.Since(t0), got)
	}
	c.cmd("LOGOUT")
	return nil
}
