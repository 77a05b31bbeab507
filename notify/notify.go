// Package notify writes the mails the migration sends to users — the
// confirmation (voluntary move), the forced-move notice (after the
// deadline) and the final mail at cutover — from text/template files, and
// handles replies to the confirmation: the reply address carries a token
// (HMAC-SHA256 over user and migration id with a site secret) so that only
// a mail answering the real confirmation stops the old delivery.
//
// Templates are shipped embedded for English (en) and German (de) under
// templates/LANG/{confirm,forced,final}.txt. A site may override any of
// them by putting a file with the same relative path in its templates
// directory. Each template defines a "subject" template and its body is the
// mail's text.
//
// Implementation notes:
//   - Mails are RFC 5322 text/plain UTF-8 with CRLF line ends, marked
//     Auto-Submitted: auto-generated (RFC 3834) so vacation responders keep
//     quiet; the Message-ID is derived from the migration id and the kind,
//     so a resent mail is recognisably the same one.
//   - Tokens are compared with hmac.Equal (constant time).
package notify

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"
)

//go:embed templates
var shipped embed.FS

// Kind names one of the mails.
type Kind string

// The mails of a migration.
const (
	Confirm Kind = "confirm" // voluntary move: confirm by replying
	Forced  Kind = "forced"  // moved after the deadline
	Final   Kind = "final"   // cutover done
)

// Languages lists the shipped languages.
var Languages = []string{"en", "de"}

// Folder is one copied folder as the user sees it.
type Folder struct {
	Name     string // name on the new server
	Messages int64
	Bytes    int64
}

// Rename is a folder whose name had to change.
type Rename struct {
	Old string // name on the old server (shown as valid UTF-8)
	New string
}

// Client is what users are told to configure.
type Client struct {
	IMAPHost        string
	IMAPPort        int
	IMAPSPort       int
	SubmissionHost  string
	SubmissionPort  int
	SubmissionsPort int
	ManageSievePort int
	// SetupURL is the web page that configures mail programs
	// (autoconfig, profiles, the certificate chain); "" = none.
	SetupURL string
}

// Data is what a template sees.
type Data struct {
	User       string
	Address    string // user@domain
	Folders    []Folder
	Renamed    []Rename
	Messages   int64
	Bytes      int64
	Client     Client
	CutoverAt  string // when old delivery stops without a reply
	Deadline   string // the user's deadline ("" if none)
	Carried    int64  // messages carried over at cutover (final mail)
	Postmaster string
	// Password is the password source that decides for the user
	// ("accounts", "crypt", "kerberos"; "" = not said).
	Password string
	Filters  Filters // the converted procmail/.forward/vacation filters
	// SpamFolder is the user's folder the site's spam rule files into
	// (an existing Junk/Spam folder of theirs; "" = not said).
	SpamFolder string
	// NewFolders were not part of the first copy (created on the old
	// server during the dual window) and were copied at cutover; Carried
	// then counts only the late mail in folders copied before.
	NewFolders []Folder
	// OverQuota is set when the copy took the user over quota and the
	// site lets the migration go on (migration.over_quota = "warn"):
	// "N KB used of M KB (P%)".
	OverQuota string
}

// Filters is what became of the user's old filters (empty Script: the
// user had none).
type Filters struct {
	Sources  string   // the old files, comma separated
	Script   string   // the Sieve script's name
	Active   bool     // the script is the active one
	Problems []string // rules not converted, in plain words
}

// Mail is one rendered message.
type Mail struct {
	Subject   string
	MessageID string
	Bytes     []byte // the whole message, CRLF line ends
}

// Mailer renders mails. The zero value uses the shipped templates.
type Mailer struct {
	// TemplatesDir overrides shipped templates file by file ("" = none).
	TemplatesDir string
	// From is the sender address (the postmaster).
	From string
	// Hostname is used in Message-IDs.
	Hostname string
	// Now is the clock for the Date header (time.Now when nil).
	Now func() time.Time
}

// ErrNoTemplate is returned for an unknown language or kind.
var ErrNoTemplate = errors.New("notify: no such template")

// templateText returns the template source, from TemplatesDir if the file
// exists there, else the shipped one. lang falls back to "en".
func (m *Mailer) templateText(kind Kind, lang string) (string, string, error) {
	if lang == "" {
		lang = "en"
	}
	rel := filepath.Join(lang, string(kind)+".txt")
	if m.TemplatesDir != "" {
		p := filepath.Join(m.TemplatesDir, rel)
		b, err := os.ReadFile(p)
		if err == nil {
			return string(b), p, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", p, fmt.Errorf("notify: template %s: %w", p, err)
		}
	}
	b, err := shipped.ReadFile("templates/" + lang + "/" + string(kind) + ".txt")
	if err != nil {
		if lang != "en" {
			return m.templateText(kind, "en")
		}
		return "", rel, fmt.Errorf("%w: %s", ErrNoTemplate, rel)
	}
	return string(b), "shipped:" + rel, nil
}

// Size formats a byte count for people (KB/MB/GB, powers of 1024).
func Size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// Check parses every template (shipped and overridden) of every shipped
// language, so a broken override is found at startup, not at cutover.
func (m *Mailer) Check() error {
	for _, lang := range Languages {
		for _, k := range []Kind{Confirm, Forced, Final} {
			if _, _, err := m.parse(k, lang); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *Mailer) parse(kind Kind, lang string) (*template.Template, string, error) {
	src, name, err := m.templateText(kind, lang)
	if err != nil {
		return nil, name, err
	}
	t, err := template.New(name).Funcs(template.FuncMap{"size": Size}).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, name, fmt.Errorf("notify: template %s: %w", name, err)
	}
	if t.Lookup("subject") == nil {
		return nil, name, fmt.Errorf("notify: template %s: no {{define \"subject\"}}", name)
	}
	return t, name, nil
}

// Render builds the mail of kind in lang for d. replyTo is set as Reply-To
// when not empty; messageID ("" = generated from d and kind) without <>.
func (m *Mailer) Render(kind Kind, lang string, d *Data, replyTo, messageID string) (*Mail, error) {
	t, name, err := m.parse(kind, lang)
	if err != nil {
		return nil, err
	}
	var subj, body bytes.Buffer
	if err := t.ExecuteTemplate(&subj, "subject", d); err != nil {
		return nil, fmt.Errorf("notify: template %s subject for %s: %w", name, d.User, err)
	}
	if err := t.Execute(&body, d); err != nil {
		return nil, fmt.Errorf("notify: template %s for %s: %w", name, d.User, err)
	}
	now := time.Now()
	if m.Now != nil {
		now = m.Now()
	}
	host := m.Hostname
	if host == "" {
		host = "localhost"
	}
	if messageID == "" {
		messageID = fmt.Sprintf("mailmig.%s.%s.%d@%s", kind, d.User, now.UnixNano(), host)
	}
	subject := strings.TrimSpace(strings.ReplaceAll(subj.String(), "\n", " "))
	var b bytes.Buffer
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	hdr("From", m.From)
	hdr("To", d.Address)
	if replyTo != "" {
		hdr("Reply-To", replyTo)
	}
	hdr("Subject", mime.QEncoding.Encode("utf-8", subject))
	hdr("Date", now.Format(time.RFC1123Z))
	hdr("Message-ID", "<"+messageID+">")
	hdr("Auto-Submitted", "auto-generated")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "8bit")
	b.WriteString("\r\n")
	text := strings.ReplaceAll(body.String(), "\r\n", "\n")
	for _, line := range strings.SplitAfter(text, "\n") {
		if line == "" {
			continue
		}
		b.WriteString(strings.TrimSuffix(line, "\n"))
		b.WriteString("\r\n")
	}
	return &Mail{Subject: subject, MessageID: messageID, Bytes: b.Bytes()}, nil
}
