package sieve

import (
	"bytes"
	"context"
	"strings"

	"github.com/migadu/go-sieve/interp"
)

// Input is what a script runs against.
type Input struct {
	// EnvelopeFrom is MAIL FROM ("" = null sender); EnvelopeTo the
	// recipient (with its subaddress); Auth the authenticated user, if any.
	EnvelopeFrom, EnvelopeTo, Auth string
	// Msg is the message.
	Msg *Message
	// MailboxExists answers the mailbox extension's mailboxexists test
	// (RFC 5490 §3.1); nil means every mailbox exists.
	MailboxExists func(ctx context.Context, name string) (bool, error)
}

// Reject is a reject/ereject action (RFC 5429).
type Reject struct {
	Reason   string
	Extended bool
}

// Vacation is one vacation action (RFC 5230) to be vetted and sent by the
// caller (the script does not check history, lists or recipients).
type Vacation struct {
	// Sender is the envelope sender to answer.
	Sender string
	// From is :from ("" = the recipient's address).
	From string
	// Subject is :subject; SubjectGiven is false when the script gave none
	// (then RFC 5230 §4.3 wants "Auto: " + the original subject).
	Subject      string
	SubjectGiven bool
	// Body is the reason; a MIME entity when Mime is set.
	Body string
	Mime bool
	// Handle is :handle as given ("" = derive one from the content).
	Handle string
	// Days is :days (go-sieve's default 7); DaysGiven is false when the
	// script gave none (the site's default then applies).
	Days      int
	DaysGiven bool
	// Addresses is :addresses, the user's other addresses.
	Addresses []string
}

// HeaderEdit is an editheader action (RFC 5293).
type HeaderEdit = interp.HeaderEdit

// Outcome is the result of running a script.
type Outcome struct {
	// ImplicitKeep is true unless an action cancelled it; Keep is true when
	// keep was executed explicitly.
	ImplicitKeep, Keep bool
	// Mailboxes are the fileinto targets in order; Create those among them
	// with :create.
	Mailboxes, Create []string
	// Flags are the imap4flags flags for stored copies (the internal
	// variable at the end: the implicit keep's, and those of actions
	// without :flags).
	Flags []string
	// MailboxFlags are the flags given with :flags to the fileinto of a
	// mailbox (RFC 5232 §5): that copy gets exactly these.
	MailboxFlags map[string][]string
	// KeepFlags, when not nil, are the :flags of an explicit keep.
	KeepFlags []string
	// Redirects are the redirect addresses.
	Redirects []string
	// Reject is set when reject/ereject ran.
	Reject *Reject
	// Vacations are the vacation actions.
	Vacations []Vacation
	// HeaderEdits are the editheader actions in order.
	HeaderEdits []HeaderEdit
}

// KeepsMessage reports whether the message is to be stored in INBOX.
func (o *Outcome) KeepsMessage() bool {
	return o.Reject == nil && (o.ImplicitKeep || o.Keep)
}

type policy struct {
	in     *Input
	reject *Reject
}

func (p *policy) RedirectAllowed(_ context.Context, _ *interp.RuntimeData, addr string) (bool, error) {
	switch {
	case strings.HasPrefix(addr, rejectMarker):
		if p.reject == nil {
			p.reject = &Reject{Reason: addr[len(rejectMarker):]}
		}
		return false, nil
	case strings.HasPrefix(addr, erejectMarker):
		if p.reject == nil {
			p.reject = &Reject{Reason: addr[len(erejectMarker):], Extended: true}
		}
		return false, nil
	}
	return true, nil
}

func (p *policy) MailboxExists(ctx context.Context, name string) (bool, error) {
	if p.in.MailboxExists == nil {
		return true, nil
	}
	return p.in.MailboxExists(ctx, name)
}

var _ interp.MailboxChecker = (*policy)(nil)

// Execute runs the script on in. An error means the script failed at run
// time; the caller keeps the message (RFC 5228 §2.10.6).
func (s *Script) Execute(ctx context.Context, in *Input) (*Outcome, error) {
	prog := s.prog
	if in.EnvelopeFrom == "" {
		prog = s.progNoVac
	}
	p := &policy{in: in}
	env := interp.EnvelopeStatic{From: in.EnvelopeFrom, To: in.EnvelopeTo, Auth: in.Auth}
	d := interp.NewRuntimeData(prog, p, env, in.Msg)
	if err := prog.Execute(ctx, d); err != nil {
		return nil, err
	}
	o := &Outcome{
		ImplicitKeep: d.ImplicitKeep,
		Keep:         d.Keep,
		Mailboxes:    d.Mailboxes,
		Create:       d.MailboxesCreate,
		Flags:        d.Flags,
		Redirects:    d.RedirectAddr,
		Reject:       p.reject,
		HeaderEdits:  d.HeaderEdits,
	}
	if o.Reject != nil {
		o.ImplicitKeep = false
	}
	o.Mailboxes = o.unpackFlags(o.Mailboxes)
	o.Create = o.unpackFlags(o.Create)
	for sender, r := range d.VacationResponses {
		v := Vacation{Sender: sender, From: r.From, Subject: r.Subject, SubjectGiven: true,
			Body: r.Body, Mime: r.IsMime, Handle: r.Handle, Days: r.Days, DaysGiven: true}
		if rest, ok := strings.CutPrefix(r.Handle, vacationMarker); ok {
			f := strings.Split(rest, fieldSep)
			v.SubjectGiven = len(f[0]) == 2 && f[0][0] == '1'
			v.DaysGiven = len(f[0]) == 2 && f[0][1] == '1'
			if len(f) > 1 {
				v.Handle = f[1]
			}
			if len(f) > 2 {
				v.Addresses = f[2:]
			}
		}
		o.Vacations = append(o.Vacations, v)
	}
	return o, nil
}

// unpackFlags turns the names actionFlags packed back into mailbox
// names, recording their flags; a packed keep becomes Keep.
func (o *Outcome) unpackFlags(names []string) []string {
	out := names[:0:0]
	for _, n := range names {
		marker := ""
		switch {
		case strings.HasPrefix(n, flagsMarker):
			marker = flagsMarker
		case strings.HasPrefix(n, keepMarker):
			marker = keepMarker
		default:
			out = append(out, n)
			continue
		}
		packed, name, _ := strings.Cut(n[len(marker):], fieldSep)
		var flags []string
		for _, f := range strings.Split(packed, flagSep) {
			flags = append(flags, strings.Fields(f)...) // a flag string may hold several
		}
		if flags == nil {
			flags = []string{}
		}
		if marker == keepMarker {
			o.Keep = true
			o.KeepFlags = flags
			continue
		}
		if o.MailboxFlags == nil {
			o.MailboxFlags = map[string][]string{}
		}
		o.MailboxFlags[name] = flags
		out = append(out, name)
	}
	return out
}

// Message is a parsed message for the interpreter: header fields by
// lower-case name (unfolded, trimmed) and the raw body.
type Message struct {
	fields map[string][]string
	body   []byte
	size   int
	hasSep bool
}

var _ interp.Message = (*Message)(nil)

// NewMessage parses raw (CRLF or LF line ends). It never fails: lines
// that are not header fields end the header, as most MUAs treat them.
func NewMessage(raw []byte) *Message {
	m := &Message{fields: make(map[string][]string, 16), size: len(raw)}
	rest := raw
	var name string
	var val []byte
	flush := func() {
		if name != "" {
			m.fields[name] = append(m.fields[name], strings.TrimSpace(string(val)))
		}
		name, val = "", nil
	}
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		var line []byte
		if i < 0 {
			line, rest = rest, nil
		} else {
			line, rest = rest[:i], rest[i+1:]
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			m.hasSep = true
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if name != "" {
				val = append(val, line...)
			}
			continue
		}
		c := bytes.IndexByte(line, ':')
		if c <= 0 || bytes.ContainsAny(line[:c], " \t") {
			// Not a header field: the body starts here.
			flush()
			rest = append(line[:len(line):len(line)], append([]byte("\n"), rest...)...)
			m.hasSep = true
			break
		}
		flush()
		name = strings.ToLower(string(line[:c]))
		val = append([]byte(nil), line[c+1:]...)
	}
	flush()
	m.body = rest
	return m
}

// HeaderGet returns the values of the header field key (any case).
func (m *Message) HeaderGet(key string) ([]string, error) {
	return m.fields[strings.ToLower(key)], nil
}

// Header returns the first value of key, or "".
func (m *Message) Header(key string) string {
	if v := m.fields[strings.ToLower(key)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// MessageSize returns the size of the raw message.
func (m *Message) MessageSize() int { return m.size }

// BodyRaw returns the body and whether the message had one.
func (m *Message) BodyRaw() ([]byte, bool, error) { return m.body, m.hasSep, nil }
