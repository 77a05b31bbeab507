package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"mailmig/mailstore"
)

// populateThreads writes one INBOX of n messages with mailing-list
// threading: Message-ID, References to an earlier message of the same
// thread (70 %), "Re:" subjects, Date fields out of arrival order, small
// bodies. For SORT (DATE) and THREAD REFERENCES benchmarks.
func populateThreads(args []string) error {
	fs := flag.NewFlagSet("populate-threads", flag.ExitOnError)
	root := fs.String("maildir", "", "Maildir path")
	n := fs.Int("msgs", 100000, "messages")
	fs.Parse(args)
	if *root == "" {
		return fmt.Errorf("-maildir is required")
	}
	st, err := mailstore.Open(*root, mailstore.Options{CreateRoot: true, NoFsync: true})
	if err != nil {
		return err
	}
	defer st.Close()
	im, err := st.Importer("INBOX", 1254999999)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	threadOf := make([]int, *n+1)
	var refs [][]int = make([][]int, *n+1)
	threads := 0
	base := time.Date(2009, 10, 7, 12, 0, 0, 0, time.UTC)
	for i := 1; i <= *n; i++ {
		var b bytes.Buffer
		if i > 1 && rng.IntN(10) < 7 {
			p := i - 1 - rng.IntN(min(i-1, 200))
			threadOf[i] = threadOf[p]
			refs[i] = append(slices.Clone(refs[p]), p)
			if len(refs[i]) > 10 {
				refs[i] = refs[i][len(refs[i])-10:]
			}
		} else {
			threads++
			threadOf[i] = threads
		}
		fmt.Fprintf(&b, "From: Sender %d <sender%d@example.net>\nTo: list@example.org\n", i%97, i%97)
		subj := fmt.Sprintf("topic %d of the list", threadOf[i])
		if len(refs[i]) > 0 {
			subj = "Re: " + subj
		}
		fmt.Fprintf(&b, "Subject: %s\n", subj)
		date := base.Add(time.Duration((i*7919)%(*n)) * time.Minute)
		fmt.Fprintf(&b, "Date: %s\n", date.Format(time.RFC1123Z))
		fmt.Fprintf(&b, "Message-ID: <%d.thread@example.net>\n", i)
		if len(refs[i]) > 0 {
			var rs []string
			for _, r := range refs[i] {
				rs = append(rs, fmt.Sprintf("<%d.thread@example.net>", r))
			}
			fmt.Fprintf(&b, "In-Reply-To: %s\nReferences: %s\n", rs[len(rs)-1], strings.Join(rs, "\n "))
		}
		b.WriteString("MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\nA short message body.\n")
		m := b.Bytes()
		if err := im.Add(context.Background(), bytes.NewReader(m), int64(len(m)), uint32(i), nil, date.Add(time.Hour)); err != nil {
			return err
		}
	}
	return im.Commit()
}

// resultOf runs cmd and returns the SHA-256 of its untagged SORT,
// THREAD or ESEARCH answers (the tag removed), so that two servers'
// answers can be compared.
func (c *client) resultOf(cmd string) (string, error) {
	c.tag++
	tag := "t" + strconv.Itoa(c.tag)
	fmt.Fprintf(c.w, "%s %s\r\n", tag, cmd)
	if err := c.w.Flush(); err != nil {
		return "", err
	}
	h := sha256.New()
	for {
		line, _, err := c.readResponse()
		if err != nil {
			return "", err
		}
		switch {
		case strings.HasPrefix(line, "* SORT"), strings.HasPrefix(line, "* THREAD"):
			h.Write([]byte(strings.TrimRight(line, "\r\n")))
		case strings.HasPrefix(line, "* ESEARCH"):
			if i := strings.IndexByte(line, ')'); i > 0 {
				h.Write([]byte(strings.TrimRight(line[i:], "\r\n")))
			}
		case strings.HasPrefix(line, tag+" "):
			if !strings.HasPrefix(line, tag+" OK") {
				return "", fmt.Errorf("%s", strings.TrimSpace(line))
			}
			return hex.EncodeToString(h.Sum(nil))[:16], nil
		}
	}
}

// sortBench logs in, selects INBOX and times each command: the first
// run (cold: whatever the server had cached before the session), the
// median of -runs runs each after a flag change (computed: an answer a
// server kept for an unchanged folder cannot be used), and the median of
// -runs more (warm), one line per command. With -rss-pid it also prints
// the resident memory of that process and its descendants after login,
// after SELECT, right after each command's first run and 2 s later, at
// the end and, after -settle, once more.
func sortBench(args []string) error {
	fs := flag.NewFlagSet("sortbench", flag.ExitOnError)
	addr := fs.String("addr", "", "server")
	user := fs.String("user", "", "user")
	pass := fs.String("pass", "", "password")
	cmds := fs.String("cmds", "SORT (DATE) UTF-8 ALL;THREAD REFERENCES UTF-8 ALL", "commands, ';' separated")
	runs := fs.Int("runs", 5, "computed and warm runs")
	rssPid := fs.Int("rss-pid", 0, "measure the RSS of this process tree")
	settle := fs.Duration("settle", 6*time.Second, "wait before the last RSS measurement")
	fs.Parse(args)
	c, err := dial(*addr)
	if err != nil {
		return err
	}
	c.nc.SetDeadline(time.Now().Add(30 * time.Minute))
	if err := c.login(*user, *pass); err != nil {
		return err
	}
	var rss []string
	mark := func(name string) {
		if *rssPid != 0 {
			rss = append(rss, fmt.Sprintf("%s=%d", name, treeRSS(*rssPid)))
		}
	}
	mark("login")
	t0 := time.Now()
	if _, err := c.cmd("SELECT INBOX"); err != nil {
		return err
	}
	fmt.Printf("select ms=%.1f exists=%d\n", float64(time.Since(t0).Microseconds())/1000, c.exists)
	mark("select")
	// A known state for the flag toggled below: each toggle changes it.
	if _, err := c.cmd("STORE 1 -FLAGS.SILENT (\\Flagged)"); err != nil {
		return err
	}
	timed := func(cmd string) (float64, string, error) {
		t := time.Now()
		s, err := c.resultOf(cmd)
		return float64(time.Since(t).Microseconds()) / 1000, s, err
	}
	median := func(x []float64) float64 {
		slices.Sort(x)
		return x[len(x)/2]
	}
	flagged := false
	for i, cmd := range strings.Split(*cmds, ";") {
		cold, sum, err := timed(cmd)
		if err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		mark(fmt.Sprintf("cmd%d_first", i+1))
		if *rssPid != 0 {
			time.Sleep(2 * time.Second)
			mark(fmt.Sprintf("cmd%d_first_2s", i+1))
		}
		var computed, warm []float64
		for r := 0; r < *runs; r++ {
			// Any change makes a kept answer unusable.
			flagged = !flagged
			op := "+FLAGS.SILENT"
			if !flagged {
				op = "-FLAGS.SILENT"
			}
			if _, err := c.cmd("STORE 1 %s (\\Flagged)", op); err != nil {
				return err
			}
			ms, s, err := timed(cmd)
			if err != nil || s != sum {
				return fmt.Errorf("%s: %v (answer %s, first %s)", cmd, err, s, sum)
			}
			computed = append(computed, ms)
		}
		for r := 0; r < *runs; r++ {
			ms, s, err := timed(cmd)
			if err != nil || s != sum {
				return fmt.Errorf("%s: %v (answer %s, first %s)", cmd, err, s, sum)
			}
			warm = append(warm, ms)
		}
		fmt.Printf("%q first_ms=%.1f computed_median_ms=%.1f warm_median_ms=%.1f result=%s\n", cmd, cold, median(computed), median(warm), sum)
	}
	mark("end")
	c.cmd("LOGOUT")
	if *rssPid != 0 {
		time.Sleep(*settle)
		mark("settled")
		fmt.Printf("rss_kb %s\n", strings.Join(rss, " "))
	}
	return nil
}

// treeRSS is the VmRSS in KiB of pid and all its descendants.
func treeRSS(pid int) int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 {
			if pp, err := strconv.Atoi(f[1]); err == nil {
				children[pp] = append(children[pp], p)
			}
		}
	}
	total := 0
	todo := []int{pid}
	for len(todo) > 0 {
		p := todo[0]
		todo = append(todo[1:], children[p]...)
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "VmRSS:") {
				if f := strings.Fields(l); len(f) > 1 {
					n, _ := strconv.Atoi(f[1])
					total += n
				}
			}
		}
	}
	return total
}
