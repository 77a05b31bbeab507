package delivery

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mailmig/server/msgspool"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mailmig/mailstore"
	"mailmig/server/sieve"
)

// sent is one message handed to the recording Sender.
type sent struct {
	From string
	To   []string
	Msg  string
}

// recordingSender records what delivery sends (redirect, vacation).
type recordingSender struct {
	mu   sync.Mutex
	msgs []sent
	err  error
}

func (r *recordingSender) Send(_ context.Context, from string, to []string, msg io.Reader) error {
	b, err := io.ReadAll(msg)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.msgs = append(r.msgs, sent{From: from, To: slices.Clone(to), Msg: string(b)})
	return nil
}

func (r *recordingSender) all() []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

// fixture is a Deliverer on a temporary tree: users' Maildirs at
// ROOT/USER/Maildir, scripts at ROOT/USER/sieve and ROOT/USER/.dovecot.sieve.
type fixture struct {
	t      *testing.T
	root   string
	d      *Deliverer
	sender *recordingSender
	now    time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, root: t.TempDir(), sender: &recordingSender{},
		now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	f.d = &Deliverer{
		MaildirFor: func(user string) (string, error) { return filepath.Join(f.root, user, "Maildir"), nil },
		ScriptsFor: func(user string) (*sieve.Storage, error) { return f.storage(user), nil },
		UserExists: func(user string) (bool, error) { return user != "nobody", nil },
		Sender:     f.sender,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Hostname:   "mx.example.com",
		NoFsync:    true,
		Now:        func() time.Time { return f.now },
	}
	return f
}

func (f *fixture) storage(user string) *sieve.Storage {
	home := filepath.Join(f.root, user)
	return &sieve.Storage{Dir: filepath.Join(home, "sieve"), ActiveLink: filepath.Join(home, ".dovecot.sieve"), GlobalDir: f.d.GlobalDir}
}

// script installs src as user's active script.
func (f *fixture) script(user, src string) {
	f.t.Helper()
	st := f.storage(user)
	if err := st.Put("main", []byte(src)); err != nil {
		f.t.Fatalf("put script: %v", err)
	}
	if err := st.SetActive("main"); err != nil {
		f.t.Fatal(err)
	}
}

// rawScript writes src as the active script without validating it.
func (f *fixture) rawScript(user, src string) {
	f.t.Helper()
	st := f.storage(user)
	if err := os.MkdirAll(st.Dir, 0o700); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(st.Dir, "raw.sieve"), []byte(src), 0o600); err != nil {
		f.t.Fatal(err)
	}
	if err := st.SetActive("raw"); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) deliver(from, to, msg string) (*Result, error) {
	f.t.Helper()
	local, _, _ := strings.Cut(to, "@")
	user, detail, _ := strings.Cut(local, "+")
	return f.d.Deliver(context.Background(), Envelope{From: from, To: to, User: user, Detail: detail}, msgspool.Bytes([]byte(msg)))
}

func (f *fixture) mustDeliver(from, to, msg string) *Result {
	f.t.Helper()
	res, err := f.deliver(from, to, msg)
	if err != nil {
		f.t.Fatalf("deliver to %s: %v", to, err)
	}
	return res
}

// stored is a message found in a folder.
type stored struct {
	Flags []string
	Body  string
}

func (f *fixture) open(user string) *mailstore.Store {
	f.t.Helper()
	s, err := mailstore.Open(filepath.Join(f.root, user, "Maildir"), mailstore.Options{CreateRoot: true, NoFsync: true})
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// folder lists a folder's messages (nil when the folder does not exist).
func (f *fixture) folder(user, name string) []stored {
	f.t.Helper()
	fo, err := f.open(user).Folder(name)
	if errors.Is(err, mailstore.ErrNoSuchFolder) {
		return nil
	}
	if err != nil {
		f.t.Fatalf("folder %s: %v", name, err)
	}
	snap, err := fo.Snapshot(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	var out []stored
	for _, m := range snap.Messages {
		b, err := os.ReadFile(m.Path)
		if err != nil {
			f.t.Fatal(err)
		}
		out = append(out, stored{Flags: m.Flags, Body: string(b)})
	}
	return out
}

// where returns "folder:count" for every non-empty folder of user, sorted.
func (f *fixture) where(user string) string {
	f.t.Helper()
	infos, err := f.open(user).Folders()
	if err != nil {
		f.t.Fatal(err)
	}
	var parts []string
	for _, fi := range infos {
		if n := len(f.folder(user, fi.Name)); n > 0 {
			parts = append(parts, fi.Name+":"+strconv.Itoa(n))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// msg builds a test message: extra header fields, then the defaults
// (From, To, Message-ID, Date, Subject) not given among them.
func msg(headers ...string) string {
	defaults := []string{"From: Bob <bob@example.org>", "To: alice@example.com",
		"Message-ID: <m1@example.org>", "Date: Mon, 23 Nov 2026 10:00:00 +0000", "Subject: hello"}
	var b strings.Builder
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	for _, d := range defaults {
		name, _, _ := strings.Cut(d, ":")
		given := false
		for _, h := range headers {
			if strings.HasPrefix(strings.ToLower(h), strings.ToLower(name)+":") {
				given = true
			}
		}
		if !given {
			b.WriteString(d + "\r\n")
		}
	}
	b.WriteString("\r\nHello Alice,\r\nthe body.\r\n")
	return b.String()
}
