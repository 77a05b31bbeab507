// Package corpus writes realistic UW-IMAP mail trees — an INBOX spool,
// mbox folders below ~/mail and ~/.mailboxlist — with the quirks found
// in real ones, for tests, benchmarks and the demo, together with what a
// correct conversion must produce (folder names, UIDVALIDITY, UIDs,
// flags, keywords, internal dates and the SHA-256 of each message's
// stored bytes).
//
// The expectations are computed by the generator from what it writes,
// independently of migrate/mbox, so tests compare two implementations.
//
// Quirks (Options.Quirks): c-client pseudo-messages, X-IMAPbase, folders
// without UIDVALIDITY, missing/duplicate/decreasing X-UIDs, body lines
// starting "From " (not separators) and ">From ", a CRLF folder, a last
// message without a final newline, an empty folder, a gzip-compressed
// folder, folder names with '.', a leading dot, control characters,
// latin-1, UTF-8 and modified UTF-7 bytes, a name colliding with INBOX,
// a file that is not an mbox, a symlink leaving the tree, and
// subscriptions to folders that do not exist.
package corpus

import (
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Options shape a generated tree.
type Options struct {
	// Seed makes the output reproducible.
	Seed uint64
	// Folders is the number of ordinary folders besides the quirky ones.
	Folders int
	// InboxMessages and FolderMessages are mean message counts.
	InboxMessages  int
	FolderMessages int
	// TotalBytes, if set, scales message counts so the tree has about this
	// many bytes.
	TotalBytes int64
	// MaxAttachment bounds attachment sizes (0 = 256 KiB).
	MaxAttachment int
	// Quirks adds the quirky folders and messages listed in the package
	// documentation.
	Quirks bool
	// HugeAttachment, if set, gives the last INBOX message an attachment
	// of this many bytes (base64: a message of 4/3 that size), to show
	// that memory does not grow with message size.
	HugeAttachment int
}

// Message is what the new store must hold for one source message.
type Message struct {
	UID    uint32
	Flags  []string // system flags and keywords, sorted
	Date   time.Time
	SHA256 [32]byte
	Size   int64
}

// Folder is what the new store must hold for one source folder.
type Folder struct {
	// Source is the mbox file; Name the expected IMAP name.
	Source string
	Name   string
	// UIDValidity is 0 when the source has none (the converter picks).
	UIDValidity uint32
	Messages    []Message
	Bytes       int64
}

// Tree is a generated user.
type Tree struct {
	Home          string
	Inbox         string
	FoldersDir    string
	Subscriptions string
	// Folders by expected IMAP name, INBOX included.
	Folders map[string]*Folder
	// Subscribed are the expected subscriptions (new names).
	Subscribed []string
	// Broken lists source files that must be reported as not converted.
	Broken []string
	// NotMail lists text files that are not mail folders: they must be
	// left behind ("not a mail folder"), neither errors nor folders.
	NotMail []string
	// Refused lists paths (symlinks) that must be refused.
	Refused []string
	// SourceBytes is the total size of the files written.
	SourceBytes int64
}

// Names returns the expected folder names, sorted.
func (t *Tree) Names() []string {
	var n []string
	for k := range t.Folders {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// gen carries the random source and the tree being built.
type gen struct {
	rnd  *rand.Rand
	opts Options
	tree *Tree
	t0   time.Time
	buf  []byte
	// forceAtt makes the next message carry an attachment of this size.
	forceAtt int
}

// quirkyName is a folder file name with the IMAP name it must get.
type quirkyName struct {
	rel, name string
	crlf, gz  bool
	noNL      bool
	empty     bool
	badUIDs   bool
	base      string // "pseudo", "imapbase", "" (none)
}

// Generate writes a tree into dir (home is dir/home, the spool
// dir/spool/USER) and returns what a conversion must produce.
func Generate(dir, user string, opts Options) (*Tree, error) {
	if opts.MaxAttachment <= 0 {
		opts.MaxAttachment = 256 << 10
	}
	if opts.InboxMessages == 0 {
		opts.InboxMessages = 20
	}
	if opts.FolderMessages == 0 {
		opts.FolderMessages = 10
	}
	g := &gen{rnd: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)), opts: opts,
		t0: time.Date(2003, 1, 1, 0, 0, 0, 0, time.UTC)}
	home := filepath.Join(dir, "home", user)
	t := &Tree{Home: home, Inbox: filepath.Join(dir, "spool", user), FoldersDir: filepath.Join(home, "mail"),
		Subscriptions: filepath.Join(home, ".mailboxlist"), Folders: map[string]*Folder{}}
	g.tree = t
	for _, d := range []string{filepath.Dir(t.Inbox), t.FoldersDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	scale := 1.0
	if opts.TotalBytes > 0 {
		// Folder sizes vary around 1.3 times FolderMessages (see below).
		n := opts.InboxMessages + opts.Folders*opts.FolderMessages*13/10
		if n == 0 {
			n = 1
		}
		avg := float64(g.avgSize())
		scale = float64(opts.TotalBytes) / (avg * float64(n))
	}
	inboxN := int(float64(opts.InboxMessages) * scale)
	if err := g.folder(t.Inbox, "INBOX", inboxN, quirkyName{base: "pseudo"}); err != nil {
		return nil, err
	}
	var subs []string
	for i := 0; i < opts.Folders; i++ {
		rel := fmt.Sprintf("folder%02d", i)
		if i%5 == 1 {
			rel = fmt.Sprintf("lists/list%02d", i)
		}
		// Mixed sizes: a few big folders, many small ones.
		n := int(float64(opts.FolderMessages) * scale * (0.2 + 1.6*g.rnd.Float64()))
		if i%7 == 3 {
			n *= 3
		}
		base := []string{"pseudo", "imapbase", ""}[i%3]
		if err := g.folder(filepath.Join(t.FoldersDir, rel), rel, n, quirkyName{base: base}); err != nil {
			return nil, err
		}
		if i%2 == 0 {
			subs = append(subs, "mail/"+rel)
			t.Subscribed = append(t.Subscribed, rel)
		}
	}
	if opts.Quirks {
		if err := g.quirks(&subs); err != nil {
			return nil, err
		}
	}
	subs = append(subs, "INBOX", "mail/does-not-exist")
	t.Subscribed = append(t.Subscribed, "INBOX", "does-not-exist")
	if err := os.WriteFile(t.Subscriptions, []byte(strings.Join(subs, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	sort.Strings(t.Subscribed)
	return t, nil
}

func (g *gen) quirks(subs *[]string) error {
	t := g.tree
	qs := []quirkyName{
		{rel: "Sent", name: "Sent", base: "imapbase"},
		{rel: "2009.10", name: "2009_10", base: "pseudo"},
		{rel: ".hidden", name: "_hidden"},
		{rel: "Gr\xc3\xbcn", name: "Grün", base: "pseudo"},
		{rel: "Gr\xfcn", name: "Grün_2", base: "pseudo"},
		{rel: "Entw&APw-rfe", name: "Entwürfe"},
		{rel: "ctl\x01name", name: "ctl_name"},
		{rel: "inbox", name: "inbox_2"},
		{rel: "crlf", name: "crlf", crlf: true, base: "pseudo"},
		{rel: "nonl", name: "nonl", noNL: true},
		{rel: "empty", name: "empty", empty: true},
		{rel: "archive.gz", name: "archive", gz: true, base: "pseudo"},
		{rel: "baduids", name: "baduids", badUIDs: true, base: "pseudo"},
		{rel: "a.b/c.d", name: "a_b/c_d", base: "pseudo"},
	}
	for _, q := range qs {
		n := 3 + g.rnd.IntN(5)
		if q.empty {
			n = 0
		}
		if err := g.folder(filepath.Join(t.FoldersDir, q.rel), q.name, n, q); err != nil {
			return err
		}
	}
	*subs = append(*subs, "mail/Sent", "mail/2009.10", "mail/Gr\xfcn", "mail/a.b/c.d", "../../etc/passwd")
	t.Subscribed = append(t.Subscribed, "Sent", "2009_10", "Grün_2", "a_b/c_d")
	notes := filepath.Join(t.FoldersDir, "notes.txt")
	if err := os.WriteFile(notes, []byte("This is not a mailbox.\n"), 0o644); err != nil {
		return err
	}
	t.NotMail = append(t.NotMail, notes)
	t.SourceBytes += 23
	// A compressed folder whose gzip header is damaged: it cannot be read.
	broken := filepath.Join(t.FoldersDir, "old.gz")
	if err := os.WriteFile(broken, []byte("\x1f\x8bnot really gzip\n"), 0o644); err != nil {
		return err
	}
	t.Broken = append(t.Broken, broken)
	t.SourceBytes += 18
	link := filepath.Join(t.FoldersDir, "passwd")
	if err := os.Symlink("/etc/passwd", link); err != nil {
		return err
	}
	t.Refused = append(t.Refused, link)
	return nil
}

func (g *gen) avgSize() int {
	// Text ~2.5 KiB; one in four has an attachment of mean
	// MaxAttachment/2, base64 (4/3).
	return 2500 + g.opts.MaxAttachment/6
}

// countingWriter counts bytes written.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// folder writes one mbox file with n messages.
func (g *gen) folder(path, name string, n int, q quirkyName) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var out io.Writer = f
	var zw *gzip.Writer
	if q.gz {
		zw = gzip.NewWriter(f)
		out = zw
	}
	cw := &countingWriter{w: f}
	if zw != nil {
		zw.Reset(cw)
		out = zw
	} else {
		out = cw
	}
	bw := bufio.NewWriterSize(out, 256<<10)
	nl := "\n"
	if q.crlf {
		nl = "\r\n"
	}
	fe := &Folder{Source: path, Name: name}
	g.tree.Folders[name] = fe
	uidv := uint32(1000000000 + g.rnd.IntN(100000000))
	// Most messages keep their X-UID; UIDs have gaps (expunged mail).
	uids := make([]uint32, n)
	u := uint32(0)
	for i := range uids {
		u += 1 + uint32(g.rnd.IntN(3))
		uids[i] = u
	}
	uidLast := u + uint32(g.rnd.IntN(4))
	keywords := []string{"$Label1", "Work", "Todo", "NonJunk", "$Forwarded"}
	date := g.t0.Add(time.Duration(g.rnd.IntN(24*365*5)) * time.Hour)
	switch q.base {
	case "pseudo":
		fe.UIDValidity = uidv
		fmt.Fprintf(bw, "From MAILER-DAEMON %s%s", date.Format("Mon Jan _2 15:04:05 2006"), nl)
		fmt.Fprintf(bw, "Date: %s%s", date.Format(time.RFC1123Z), nl)
		fmt.Fprintf(bw, "From: Mail System Internal Data <MAILER-DAEMON@example.org>%s", nl)
		fmt.Fprintf(bw, "Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA%s", nl)
		fmt.Fprintf(bw, "Message-ID: <%d@example.org>%s", uidv, nl)
		fmt.Fprintf(bw, "X-IMAP: %d %010d %s%s", uidv, uidLast, strings.Join(keywords, " "), nl)
		fmt.Fprintf(bw, "Status: RO%s%s", nl, nl)
		fmt.Fprintf(bw, "This text is part of the internal format of your mail folder, and is not%sa real message.  It is created automatically by the mail system software.%s", nl, nl)
		fmt.Fprintf(bw, "If deleted, important folder data will be lost, and it will be re-created%swith the data reset to initial values.%s%s", nl, nl, nl)
	case "imapbase":
		fe.UIDValidity = uidv
	default:
		uidLast = 0
	}
	last := uint32(0)
	uidsValid := true
	for i := 0; i < n; i++ {
		date = date.Add(time.Duration(1+g.rnd.IntN(7200)) * time.Second)
		if name == "INBOX" && i == n-1 && g.opts.HugeAttachment > 0 {
			g.forceAtt = g.opts.HugeAttachment
		}
		msg, hdrs := g.message(date, i, keywords)
		// Bookkeeping headers, written the c-client way (after the
		// message's own header).
		var book []string
		if q.base == "imapbase" && i == 0 {
			book = append(book, fmt.Sprintf("X-IMAPbase: %d %010d %s", uidv, uidLast, strings.Join(keywords, " ")))
		}
		uid := uids[i]
		xuid := fmt.Sprint(uid)
		switch {
		case q.base == "":
			// No UIDVALIDITY: c-client ignores the X-UIDs.
		case q.badUIDs && i == 1 && n > 2:
			xuid = fmt.Sprint(uids[0]) // duplicate
		case q.badUIDs && i == 2 && n > 3:
			xuid = "0" // invalid
		case q.badUIDs && i == n-1:
			xuid = "" // new mail, never seen by c-client
		}
		// c-client's rules: X-UIDs count only in a folder with X-IMAP or
		// X-IMAPbase, each must be above the previous message's UID; the
		// first that is not (missing ones aside) makes c-client drop the
		// UIDVALIDITY and ignore every later X-UID. A message without a
		// usable X-UID gets one above the highest UID so far.
		var want uint32
		x := uint32(0)
		if v, err := strconv.ParseUint(xuid, 10, 32); err == nil {
			x = uint32(v)
		}
		switch {
		case q.base != "" && uidsValid && xuid != "" && x > last:
			want = x
			if x > uidLast {
				uidLast = x
			}
		case q.base != "" && uidsValid && xuid != "":
			uidsValid = false
			fe.UIDValidity = 0
			fallthrough
		default:
			uidLast++
			want = uidLast
		}
		last = want
		if xuid != "" {
			book = append(book, "X-UID: "+xuid)
		}
		flags, st, xst := g.flags()
		var kws []string
		for _, k := range keywords {
			if g.rnd.IntN(6) == 0 {
				kws = append(kws, k)
			}
		}
		if st != "" {
			book = append(book, "Status: "+st)
		}
		if xst != "" {
			book = append(book, "X-Status: "+xst)
		}
		if len(kws) > 0 || g.rnd.IntN(3) == 0 {
			book = append(book, "X-Keywords: "+strings.Join(kws, " "))
		}
		fl := flags
		if q.base != "" {
			// c-client shows only keywords the folder declares in
			// X-IMAP/X-IMAPbase.
			fl = append(fl, kws...)
		}
		sort.Strings(fl)
		stored := hdrs + msg
		bookStr := ""
		for _, b := range book {
			bookStr += b + "\n"
		}
		// The stored message: header, then the bookkeeping (removed), the
		// blank line and the body.
		full := strings.Replace(stored, "\n\n", "\n"+bookStr+"\n", 1)
		last := i == n-1
		if q.noNL && last {
			stored = strings.TrimRight(stored, "\n")
			full = strings.TrimRight(full, "\n")
		}
		if q.crlf {
			stored = strings.ReplaceAll(stored, "\n", "\r\n")
			full = strings.ReplaceAll(full, "\n", "\r\n")
		}
		fmt.Fprintf(bw, "From %s %s%s", g.sender(), date.Format("Mon Jan _2 15:04:05 2006"), nl)
		bw.WriteString(full)
		if !(q.noNL && last) {
			bw.WriteString(nl)
		}
		sum := sha256.Sum256([]byte(stored))
		fe.Messages = append(fe.Messages, Message{UID: want, Flags: fl, Date: date, SHA256: sum, Size: int64(len(stored))})
		fe.Bytes += int64(len(stored))
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return err
		}
	}
	g.tree.SourceBytes += cw.n
	return f.Close()
}

func (g *gen) sender() string {
	return []string{"alice@example.org", "bob@example.net", "MAILER-DAEMON", "list-bounces@lists.example.com", "carol@uni.example.edu"}[g.rnd.IntN(5)]
}

// flags returns IMAP flags and the Status / X-Status values.
func (g *gen) flags() (flags []string, status, xstatus string) {
	if g.rnd.IntN(10) < 8 {
		flags = append(flags, `\Seen`)
		status = "RO"
	} else if g.rnd.IntN(2) == 0 {
		status = "O"
	}
	for _, f := range []struct {
		c    byte
		name string
		p    int
	}{{'A', `\Answered`, 5}, {'F', `\Flagged`, 10}, {'T', `\Draft`, 30}, {'D', `\Deleted`, 20}} {
		if g.rnd.IntN(f.p) == 0 {
			flags = append(flags, f.name)
			xstatus += string(f.c)
		}
	}
	return flags, status, xstatus
}

var words = strings.Fields(`the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were her she there one all we their been has when who will more no if out so said what up its about into than them can only other new some could time these two may then do first any my now such like our over man me even most made after also did many before must through back years where much your way well down should because each just those people how too little state good very make world still own see men work long get here between both life being under never day same another know while last might us great old year off come since against go came right used take three`)

// message returns a body and header (header ends with "\n\n").
func (g *gen) message(date time.Time, i int, kws []string) (body, header string) {
	var h strings.Builder
	subj := g.sentence(3 + g.rnd.IntN(6))
	if g.rnd.IntN(8) == 0 {
		subj = "=?ISO-8859-1?Q?Gr=FC=DFe_aus_K=F6ln?= " + subj
	}
	fmt.Fprintf(&h, "Return-Path: <%s>\n", g.sender())
	fmt.Fprintf(&h, "Received: from mx.example.org (mx.example.org [192.0.2.%d])\n\tby mail.example.edu with ESMTP id %x\n\tfor <user@example.edu>; %s\n", g.rnd.IntN(250), g.rnd.Uint64(), date.Format(time.RFC1123Z))
	fmt.Fprintf(&h, "Date: %s\nFrom: %s\nTo: user@example.edu\nSubject: %s\nMessage-ID: <%x.%d@example.org>\n", date.Format(time.RFC1123Z), g.sender(), subj, g.rnd.Uint64(), i)
	if g.rnd.IntN(10) == 0 {
		// A Content-Length that lies: it must not be trusted.
		fmt.Fprintf(&h, "Content-Length: %d\n", g.rnd.IntN(50))
	}
	var b strings.Builder
	text := func() {
		for p := 0; p < 1+g.rnd.IntN(5); p++ {
			for l := 0; l < 1+g.rnd.IntN(6); l++ {
				b.WriteString(g.sentence(6 + g.rnd.IntN(8)))
				b.WriteByte('\n')
			}
			switch g.rnd.IntN(12) {
			case 0:
				b.WriteString(">From the archives: " + g.sentence(4) + "\n")
			case 1:
				b.WriteString("From what I hear, " + g.sentence(5) + "\n")
			case 2:
				b.WriteString("\n>>From deep quoting\n")
			}
			b.WriteByte('\n')
		}
	}
	if g.rnd.IntN(4) != 0 && g.forceAtt == 0 {
		h.WriteString("MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n")
		text()
		return b.String(), h.String()
	}
	boundary := fmt.Sprintf("=_boundary_%x", g.rnd.Uint64())
	fmt.Fprintf(&h, "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"%s\"\n\n", boundary)
	fmt.Fprintf(&b, "This is a multi-part message in MIME format.\n--%s\nContent-Type: text/plain; charset=us-ascii\n\n", boundary)
	text()
	size := g.rnd.IntN(g.opts.MaxAttachment)
	if g.forceAtt > 0 {
		size, g.forceAtt = g.forceAtt, 0
	}
	if cap(g.buf) < size {
		g.buf = make([]byte, size)
	}
	raw := g.buf[:size]
	for k := 0; k+8 <= len(raw); k += 8 {
		v := g.rnd.Uint64()
		for j := 0; j < 8; j++ {
			raw[k+j] = byte(v >> (8 * j))
		}
	}
	fmt.Fprintf(&b, "--%s\nContent-Type: application/octet-stream; name=\"file%d.bin\"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"file%d.bin\"\n\n", boundary, i, i)
	enc := base64.StdEncoding.EncodeToString(raw)
	for len(enc) > 76 {
		b.WriteString(enc[:76])
		b.WriteByte('\n')
		enc = enc[76:]
	}
	b.WriteString(enc + "\n--" + boundary + "--\n")
	return b.String(), h.String()
}

func (g *gen) sentence(n int) string {
	w := make([]string, n)
	for i := range w {
		w[i] = words[g.rnd.IntN(len(words))]
	}
	w[0] = strings.ToUpper(w[0][:1]) + w[0][1:]
	return strings.Join(w, " ") + "."
}
