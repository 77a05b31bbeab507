package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"math/rand/v2"
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
// run (cold) and the median of -runs more (warm), one line per command.
func sortBench(args []string) error {
	fs := flag.NewFlagSet("sortbench", flag.ExitOnError)
	addr := fs.String("addr", "", "server")
	user := fs.String("user", "", "user")
	pass := fs.String("pass", "", "password")
	cmds := fs.String("cmds", "SORT (DATE) UTF-8 ALL;THREAD REFERENCES UTF-8 ALL", "commands, ';' separated")
	runs := fs.Int("runs", 7, "warm runs")
	fs.Parse(args)
	c, err := dial(*addr)
	if err != nil {
		return err
	}
	c.nc.SetDeadline(time.Now().Add(30 * time.Minute))
	if err := c.login(*user, *pass); err != nil {
		return err
	}
	t0 := time.Now()
	if _, err := c.cmd("SELECT INBOX"); err != nil {
		return err
	}
	fmt.Printf("select ms=%.1f exists=%d\n", float64(time.Since(t0).Microseconds())/1000, c.exists)
	for _, cmd := range strings.Split(*cmds, ";") {
		var times []float64
		var sum string
		for r := 0; r <= *runs; r++ {
			t := time.Now()
			s, err := c.resultOf(cmd)
			if err != nil {
				return fmt.Errorf("%s: %w", cmd, err)
			}
			ms := float64(time.Since(t).Microseconds()) / 1000
			if r == 0 {
				fmt.Printf("%q cold_ms=%.1f\n", cmd, ms)
				continue
			}
			times = append(times, ms)
			sum = s
		}
		slices.Sort(times)
		fmt.Printf("%q warm_median_ms=%.1f min_ms=%.1f max_ms=%.1f result=%s\n", cmd, times[len(times)/2], times[0], times[len(times)-1], sum)
	}
	c.cmd("LOGOUT")
	return nil
}
