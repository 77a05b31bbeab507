package delivery

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"strings"
	"sync"
	"time"

	"mailmig/server/msgspool"
	"mailmig/server/sieve"
)

// MemoryVacation is an in-memory VacationStore (tests, and the default
// when no persistent store is configured).
type MemoryVacation struct {
	mu   sync.Mutex
	seen map[[3]string]time.Time
}

// NewMemoryVacation returns an empty MemoryVacation.
func NewMemoryVacation() *MemoryVacation {
	return &MemoryVacation{seen: map[[3]string]time.Time{}}
}

// VacationSeen implements VacationStore.
func (m *MemoryVacation) VacationSeen(_ context.Context, user, handle, sender string, since time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	at, ok := m.seen[[3]string{user, handle, strings.ToLower(sender)}]
	return ok && !at.Before(since), nil
}

// VacationRecord implements VacationStore.
func (m *MemoryVacation) VacationRecord(_ context.Context, user, handle, sender string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seen[[3]string{user, handle, strings.ToLower(sender)}] = at
	return nil
}

// VacationClaim implements VacationClaimer.
func (m *MemoryVacation) VacationClaim(_ context.Context, user, handle, sender string, since, at time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [3]string{user, handle, strings.ToLower(sender)}
	if prev, ok := m.seen[k]; ok && !prev.Before(since) {
		return false, nil
	}
	m.seen[k] = at
	return true, nil
}

// VacationUnclaim implements VacationClaimer.
func (m *MemoryVacation) VacationUnclaim(_ context.Context, user, handle, sender string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [3]string{user, handle, strings.ToLower(sender)}
	if prev, ok := m.seen[k]; ok && prev.Equal(at) {
		delete(m.seen, k)
	}
	return nil
}

// listHeaders mark mailing-list traffic (RFC 2369, RFC 2919).
var listHeaders = []string{"List-Id", "List-Help", "List-Subscribe", "List-Unsubscribe",
	"List-Post", "List-Owner", "List-Archive"}

// vacationBlocked returns why no reply may go to this message ("" if one
// may): RFC 5230 §4.5 and §4.6.
func vacationBlocked(env Envelope, m *sieve.Message, v sieve.Vacation) string {
	sender := strings.ToLower(v.Sender)
	if sender == "" {
		return "null sender"
	}
	local, _, _ := strings.Cut(sender, "@")
	switch {
	case local == "mailer-daemon", local == "listserv", local == "majordomo",
		strings.HasPrefix(local, "owner-"), strings.HasSuffix(local, "-request"):
		return "automatic sender " + sender
	}
	if as := strings.ToLower(m.Header("Auto-Submitted")); as != "" && !strings.HasPrefix(as, "no") {
		return "auto-submitted"
	}
	switch strings.ToLower(strings.TrimSpace(m.Header("Precedence"))) {
	case "bulk", "junk", "list":
		return "precedence"
	}
	for _, h := range listHeaders {
		if m.Header(h) != "" {
			return "mailing list"
		}
	}
	// Microsoft's "no out-of-office replies" (MS-OXCMAIL §2.2.3.2.14),
	// which pigeonhole honours too.
	for _, tok := range strings.Split(m.Header("X-Auto-Response-Suppress"), ",") {
		if t := strings.ToLower(strings.TrimSpace(tok)); t == "oof" || t == "all" {
			return "X-Auto-Response-Suppress: " + t
		}
	}
	if m.Header("X-Spam-Flag") != "" && strings.EqualFold(strings.TrimSpace(m.Header("X-Spam-Flag")), "yes") {
		return "spam"
	}
	mine := myAddresses(env, v)
	if mine[sender] {
		return "sender is the user"
	}
	for _, h := range []string{"To", "Cc", "Bcc", "Resent-To", "Resent-Cc"} {
		vals, _ := m.HeaderGet(h)
		for _, val := range vals {
			addrs, err := mail.ParseAddressList(val)
			if err != nil {
				// Fall back to a plain search in an unparsable field.
				for a := range mine {
					if strings.Contains(strings.ToLower(val), a) {
						return ""
					}
				}
				continue
			}
			for _, a := range addrs {
				if mine[strings.ToLower(a.Address)] {
					return ""
				}
			}
		}
	}
	return "user not in To/Cc"
}

// myAddresses is the set of the user's addresses: the recipient with and
// without its subaddress, and :addresses.
func myAddresses(env Envelope, v sieve.Vacation) map[string]bool {
	mine := map[string]bool{}
	add := func(a string) {
		a = strings.ToLower(strings.Trim(strings.TrimSpace(a), "<>"))
		if a == "" {
			return
		}
		mine[a] = true
		if local, dom, ok := strings.Cut(a, "@"); ok {
			if base, _, ok := strings.Cut(local, "+"); ok {
				mine[base+"@"+dom] = true
			}
		}
	}
	add(env.To)
	for _, a := range v.Addresses {
		add(a)
	}
	if v.From != "" {
		if a, err := mail.ParseAddress(v.From); err == nil {
			add(a.Address)
		}
	}
	return mine
}

func vacationHandle(v sieve.Vacation) string {
	if v.Handle != "" {
		return v.Handle
	}
	h := sha256.Sum256([]byte(v.From + "\x00" + v.Subject + "\x00" + v.Body + "\x00" + fmt.Sprint(v.Mime)))
	return "auto-" + hex.EncodeToString(h[:12])
}

// vacation vets and sends one vacation reply; it returns whether one was
// sent.
func (d *Deliverer) vacation(ctx context.Context, env Envelope, m *sieve.Message, v sieve.Vacation) (bool, error) {
	log := d.state.log.With("user", env.User, "sender", v.Sender)
	// The user's aliases are theirs too (RFC 5230 §4.5).
	v.Addresses = append(append([]string(nil), v.Addresses...), d.ownAliasAddresses(env)...)
	if why := vacationBlocked(env, m, v); why != "" {
		log.Debug("vacation: no reply", "why", why)
		return false, nil
	}
	handle := vacationHandle(v)
	now := d.now()
	if !v.DaysGiven && d.VacationDays > 0 {
		v.Days = d.VacationDays
	}
	period := time.Duration(v.Days) * 24 * time.Hour
	if v.SecondsGiven {
		period = time.Duration(v.Seconds) * time.Second // RFC 6131
	}
	// Parallel deliveries to one user from one sender (LMTP delivers
	// connections and recipients concurrently) look up and record the
	// reply under one lock, so only one of them answers.
	sender := strings.ToLower(v.Sender)
	unlock := d.state.vacationLock(env.User + "\x00" + handle + "\x00" + sender)
	defer unlock()
	// Other processes share the store, not the lock: a store that can
	// claims the reply before it is sent.
	claimer, _ := d.state.vacation.(VacationClaimer)
	claimed := false
	switch {
	case period > 0 && claimer != nil:
		ok, err := claimer.VacationClaim(ctx, env.User, handle, sender, now.Add(-period), now)
		if err != nil {
			return false, fmt.Errorf("vacation memory: %w", err)
		}
		if !ok {
			log.Debug("vacation: answered already", "days", v.Days)
			return false, nil
		}
		claimed = true
	case period > 0:
		seen, err := d.state.vacation.VacationSeen(ctx, env.User, handle, sender, now.Add(-period))
		if err != nil {
			return false, fmt.Errorf("vacation memory: %w", err)
		}
		if seen {
			log.Debug("vacation: answered already", "days", v.Days)
			return false, nil
		}
	}
	unclaim := func() {
		if claimed {
			if err := claimer.VacationUnclaim(ctx, env.User, handle, sender, now); err != nil {
				log.Error("vacation: forgetting the reply that was not sent failed", "err", err)
			}
		}
	}
	if d.Sender == nil {
		unclaim()
		return false, errors.New("no Sender configured")
	}
	reply := d.vacationReply(env, m, v, now)
	if err := d.Sender.Send(ctx, "", []string{v.Sender}, bytes.NewReader(reply)); err != nil {
		unclaim()
		return false, fmt.Errorf("send: %w", err)
	}
	if !claimed {
		if err := d.state.vacation.VacationRecord(ctx, env.User, handle, sender, now); err != nil {
			log.Error("vacation: recording the reply failed", "err", err)
		}
	}
	log.Info("vacation reply sent")
	return true, nil
}

func (d *Deliverer) hostname() string {
	if d.Hostname != "" {
		return d.Hostname
	}
	h, _ := os.Hostname()
	if h == "" {
		h = "localhost"
	}
	return h
}

func encodeHeader(s string) string {
	s = strings.NewReplacer("\r", "", "\n", " ").Replace(s)
	if isASCII(s) {
		return s
	}
	return mime.QEncoding.Encode("utf-8", s)
}

// vacationReply builds the reply (RFC 5230 §5; RFC 3834).
func (d *Deliverer) vacationReply(env Envelope, m *sieve.Message, v sieve.Vacation, now time.Time) []byte {
	var b bytes.Buffer
	from := v.From
	if from == "" {
		from = "<" + env.To + ">"
	}
	subject := v.Subject
	if !v.SubjectGiven {
		orig := m.Header("Subject")
		if dec, err := (&mime.WordDecoder{}).DecodeHeader(orig); err == nil {
			orig = dec
		}
		subject = "Auto: " + orig
	}
	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	fmt.Fprintf(&b, "From: %s\r\n", encodeHeader(from))
	fmt.Fprintf(&b, "To: <%s>\r\n", v.Sender)
	fmt.Fprintf(&b, "Subject: %s\r\n", encodeHeader(subject))
	fmt.Fprintf(&b, "Date: %s\r\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s.vacation@%s>\r\n", hex.EncodeToString(rnd[:]), d.hostname())
	if id := strings.TrimSpace(m.Header("Message-ID")); id != "" {
		fmt.Fprintf(&b, "In-Reply-To: %s\r\n", id)
		refs := strings.TrimSpace(m.Header("References"))
		if refs != "" {
			refs += " "
		}
		fmt.Fprintf(&b, "References: %s%s\r\n", refs, id)
	}
	b.WriteString("Auto-Submitted: auto-replied (vacation)\r\n")
	b.WriteString("Precedence: bulk\r\n")
	b.WriteString("MIME-Version: 1.0\r\n")
	if v.Mime {
		// The reason is a MIME entity: its headers follow ours.
		body := strings.ReplaceAll(strings.ReplaceAll(v.Body, "\r\n", "\n"), "\n", "\r\n")
		b.WriteString(strings.TrimLeft(body, "\r\n"))
		return b.Bytes()
	}
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	b.WriteString("Content-Transfer-Encoding: quoted-printable\r\n\r\n")
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(strings.ReplaceAll(strings.ReplaceAll(v.Body, "\r\n", "\n"), "\n", "\r\n")))
	_ = qp.Close()
	b.WriteString("\r\n")
	return b.Bytes()
}

// redirectMark is added to redirected copies; a message carrying it for
// the same recipient is not redirected again (a loop).
const redirectMark = "X-Sieve-Redirected-From"

// redirect sends body on to addr with the original envelope sender
// (RFC 5228 §4.2).
func (d *Deliverer) redirect(ctx context.Context, env Envelope, addr string, body msgspool.Source) error {
	if d.Sender == nil {
		return errors.New("no Sender configured")
	}
	head, err := msgspool.HeaderPrefix(body)
	if err != nil {
		return err
	}
	m, err := sieve.NewMessageReader(body, body.Size())
	if err != nil {
		return err
	}
	vals, _ := m.HeaderGet(redirectMark)
	for _, v := range vals {
		if strings.EqualFold(strings.Trim(v, "<> "), env.To) {
			return fmt.Errorf("redirect loop: already redirected from %s", env.To)
		}
	}
	eol, err := lineEnd(body, head)
	if err != nil {
		return err
	}
	out := make([]byte, 0, len(head)+100)
	out = append(out, redirectMark+": <"+env.To+">"+eol...)
	// The local Return-Path is not part of the message sent on: the
	// next hop's delivery adds its own (RFC 5321 §4.4).
	fields, rest := splitHeader(head)
	for _, f := range fields {
		if f.name != "return-path" {
			out = append(out, f.raw...)
		}
	}
	out = append(out, rest...)
	msg := msgspool.Concat(msgspool.Bytes(out), msgspool.Section(body, int64(len(head))))
	return d.Sender.Send(ctx, env.From, []string{addr}, msgspool.NewReader(msg))
}

// vacationLock takes the lock of one (user, handle, sender) and returns
// its release; locks not held by anyone are dropped.
func (st *deliverState) vacationLock(key string) func() {
	st.vacMu.Lock()
	if st.vacLocks == nil {
		st.vacLocks = map[string]*vacLock{}
	}
	l := st.vacLocks[key]
	if l == nil {
		l = &vacLock{}
		st.vacLocks[key] = l
	}
	l.users++
	st.vacMu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		st.vacMu.Lock()
		if l.users--; l.users == 0 {
			delete(st.vacLocks, key)
		}
		st.vacMu.Unlock()
	}
}

type vacLock struct {
	mu    sync.Mutex
	users int // holders and waiters
}
