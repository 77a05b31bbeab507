package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailmig/mailstore"
	"mailmig/server/outbound/outboundtest"
	"mailmig/server/sieve"
)

// lmtpMsg is one message for testdata/lmtp_send.py.
type lmtpMsg struct {
	From  string   `json:"from"`
	Rcpts []string `json:"rcpts"`
	File  string   `json:"file"`
}

// lmtpReply is a recipient's reply: code and text.
type lmtpReply struct {
	Code int
	Text string
}

// pyLMTP delivers msgs with python3's smtplib.LMTP to addr (host:port or
// a unix socket path) and returns each message's per-recipient replies.
func pyLMTP(t *testing.T, addr string, msgs []lmtpMsg) []map[string]lmtpReply {
	t.Helper()
	py := requireTool(t, "python3")
	spec, err := json.Marshal(map[string]any{"addr": addr, "messages": msgs})
	if err != nil {
		t.Fatal(err)
	}
	specFile := filepath.Join(t.TempDir(), "spec.json")
	if err := os.WriteFile(specFile, spec, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, "testdata/lmtp_send.py", specFile).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("lmtp_send.py: %v\n%s", err, stderr)
	}
	var raw []map[string][2]any
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatalf("lmtp_send.py output %q: %v", out, err)
	}
	res := make([]map[string]lmtpReply, len(raw))
	for i, m := range raw {
		res[i] = map[string]lmtpReply{}
		for r, v := range m {
			code, _ := v[0].(float64)
			text, _ := v[1].(string)
			res[i][r] = lmtpReply{Code: int(code), Text: text}
		}
	}
	return res
}

// writeMail writes a test message and returns its path.
func writeMail(t *testing.T, dir, name, from, to, subject string, headers ...string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n", from, to, subject, name)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\nHello,\r\n")
	for i := 0; i < 30; i++ {
		fmt.Fprintf(&b, "line %d of %s, some text to make the message a realistic size.\r\n", i, name)
	}
	p := filepath.Join(dir, name+".eml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// mailIn returns the subjects of the messages in user's folder, sorted,
// with their flags (as "subject [flags]").
func mailIn(t *testing.T, dataDir, user, folder string) []string {
	t.Helper()
	root := filepath.Join(dataDir, "mail", user, "Maildir")
	if _, err := os.Stat(root); os.IsNotExist(err) {
		return nil
	}
	st, err := mailstore.Open(root, mailstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := st.Folder(folder)
	if err != nil {
		return nil
	}
	snap, err := f.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range snap.Messages {
		b, err := os.ReadFile(m.Path)
		if err != nil {
			t.Fatal(err)
		}
		subj := ""
		for _, l := range strings.Split(string(b), "\r\n") {
			if s, ok := strings.CutPrefix(l, "Subject: "); ok {
				subj = s
				break
			}
		}
		if len(m.Flags) > 0 {
			subj += " " + fmt.Sprint(m.Flags)
		}
		out = append(out, subj)
	}
	slices.Sort(out)
	return out
}

// activateScript stores src as user's active Sieve script in --data mode.
func activateScript(t *testing.T, dataDir, user, src string) {
	t.Helper()
	home := filepath.Join(dataDir, "mail", user)
	st := &sieve.Storage{Dir: filepath.Join(home, "sieve"), ActiveLink: filepath.Join(home, ".dovecot.sieve")}
	if err := st.Put("main", []byte(src)); err != nil {
		t.Fatal(err)
	}
	if err := st.SetActive("main"); err != nil {
		t.Fatal(err)
	}
}

func TestLMTPSpamCorpusPython(t *testing.T) {
	data := t.TempDir()
	for _, u := range []string{"alice", "bob", "carol"} {
		createUser(t, data, u, "secret-"+u)
	}
	// bob files lists; carol refuses mail from one sender.
	activateScript(t, data, "bob", `require ["fileinto", "mailbox", "imap4flags"];
if exists "List-Id" { fileinto :create :flags "\\Seen" "lists"; }`)
	activateScript(t, data, "carol", `require ["reject", "envelope"];
if envelope :is "from" "pest@example.net" { reject "Carol does not accept your mail."; }`)
	s := startServe(t, data)

	dir := t.TempDir()
	var msgs []lmtpMsg
	wantAlice := map[string][]string{}
	for i := 0; i < 12; i++ {
		subj := fmt.Sprintf("ham %02d", i)
		var hdr []string
		switch i % 3 {
		case 0:
			subj = fmt.Sprintf("spam %02d", i)
			hdr = []string{"X-Spam-Level: " + strings.Repeat("*", 5+i%4)}
			wantAlice["junk"] = append(wantAlice["junk"], subj)
		case 1:
			hdr = []string{"X-Spam-Level: ***"}
			wantAlice["INBOX"] = append(wantAlice["INBOX"], subj)
		default:
			wantAlice["INBOX"] = append(wantAlice["INBOX"], subj)
		}
		msgs = append(msgs, lmtpMsg{From: "sender@example.net", Rcpts: []string{"alice@example.org"},
			File: writeMail(t, dir, fmt.Sprintf("m%02d", i), "sender@example.net", "alice@example.org", subj, hdr...)})
	}
	// One transaction, four recipients: one reply each (RFC 2033 §4.2).
	msgs = append(msgs,
		lmtpMsg{From: "pest@example.net", Rcpts: []string{"bob@example.org", "ghost@example.org", "carol@example.org", "alice+news@example.org"},
			File: writeMail(t, dir, "list", "pest@example.net", "golang-nuts@example.com", "list mail", "List-Id: <golang-nuts.example.com>")},
		lmtpMsg{From: "sender@example.net", Rcpts: []string{"bob@example.org"},
			File: writeMail(t, dir, "bobspam", "sender@example.net", "bob@example.org", "spam for bob", "X-Spam-Level: ********")},
	)
	res := pyLMTP(t, s.Addr("lmtp"), msgs)
	for i := 0; i < 12; i++ {
		if r := res[i]["alice@example.org"]; r.Code != 250 {
			t.Errorf("message %d: %+v", i, r)
		}
	}
	multi := res[12]
	want := map[string]int{"bob@example.org": 250, "ghost@example.org": 550, "carol@example.org": 550, "alice+news@example.org": 250}
	for r, code := range want {
		if multi[r].Code != code {
			t.Errorf("%s: %+v, want %d", r, multi[r], code)
		}
	}
	if !strings.Contains(multi["ghost@example.org"].Text, "5.1.1") {
		t.Errorf("unknown user reply %q", multi["ghost@example.org"].Text)
	}
	if txt := multi["carol@example.org"].Text; !strings.Contains(txt, "5.7.1") || !strings.Contains(txt, "Carol does not accept your mail.") {
		t.Errorf("reject reply %q", txt)
	}

	wantAlice["INBOX"] = append(wantAlice["INBOX"], "list mail")
	for _, folder := range []string{"INBOX", "junk"} {
		got := mailIn(t, data, "alice", folder)
		w := slices.Clone(wantAlice[folder])
		slices.Sort(w)
		if !slices.Equal(got, w) {
			t.Errorf("alice %s = %v, want %v", folder, got, w)
		}
	}
	// bob's own script replaces the global one: his spam stays in INBOX.
	if got := mailIn(t, data, "bob", "lists"); !slices.Equal(got, []string{`list mail [\Seen]`}) {
		t.Errorf("bob lists = %v", got)
	}
	if got := mailIn(t, data, "bob", "INBOX"); !slices.Equal(got, []string{"spam for bob"}) {
		t.Errorf("bob INBOX = %v", got)
	}
	if got := mailIn(t, data, "carol", "INBOX"); len(got) != 0 {
		t.Errorf("carol got rejected mail: %v", got)
	}
	// junk was created on first use, subscribed.
	subs, err := os.ReadFile(filepath.Join(data, "mail", "alice", "Maildir", "subscriptions"))
	if err != nil || !strings.Contains(string(subs), "junk") {
		t.Errorf("subscriptions %q %v", subs, err)
	}
}

func TestLMTPUnixSocketGlobalBefore(t *testing.T) {
	data := t.TempDir()
	createUser(t, data, "bob", "pw-bob")
	activateScript(t, data, "bob", `require ["fileinto", "mailbox"]; fileinto :create "Everything";`)
	s := startServeConfig(t, data, "[sieve]\nglobal_before = true\nspam_folder = \"Spam\"\n\n[limits]\nquota_messages = 3\n")
	sock := s.Addr("lmtp-unix")
	if !strings.HasPrefix(sock, "/") {
		t.Fatalf("unix socket address %q", sock)
	}
	dir := t.TempDir()
	var msgs []lmtpMsg
	for i, h := range []string{"X-Spam-Level: *****", "", "X-Spam-Level: ******", "", ""} {
		var hdr []string
		if h != "" {
			hdr = append(hdr, h)
		}
		name := fmt.Sprintf("m%d", i)
		msgs = append(msgs, lmtpMsg{From: "x@example.net", Rcpts: []string{"bob@example.org"},
			File: writeMail(t, dir, name, "x@example.net", "bob@example.org", name, hdr...)})
	}
	res := pyLMTP(t, sock, msgs)
	codes := []int{}
	for _, r := range res {
		codes = append(codes, r["bob@example.org"].Code)
	}
	// The fourth message exceeds quota_messages = 3: 552 5.2.2.
	if !slices.Equal(codes, []int{250, 250, 250, 552, 552}) {
		t.Fatalf("codes %v (%v)", codes, res)
	}
	if txt := res[3]["bob@example.org"].Text; !strings.Contains(txt, "5.2.2") {
		t.Errorf("over quota reply %q", txt)
	}
	// global_before: spam goes to Spam although bob's script files all.
	if got := mailIn(t, data, "bob", "Spam"); !slices.Equal(got, []string{"m0", "m2"}) {
		t.Errorf("Spam = %v", got)
	}
	if got := mailIn(t, data, "bob", "Everything"); !slices.Equal(got, []string{"m1"}) {
		t.Errorf("Everything = %v", got)
	}
}

func TestLMTPVacationAndRedirectThroughRelay(t *testing.T) {
	data := t.TempDir()
	sink := outboundtest.Start(t, outboundtest.Options{})
	createUser(t, data, "alice", "pw-alice")
	createUser(t, data, "dave", "pw-dave")
	activateScript(t, data, "alice", `require ["vacation"];
vacation :days 1 :subject "Out of office" "I am away until Monday.";`)
	activateScript(t, data, "dave", `require ["copy"]; redirect :copy "dave@elsewhere.example";`)
	s := startServeConfig(t, data, "[submission]\nsmarthost = \""+sink.Addr+"\"\nsmarthost_starttls = false\n")
	dir := t.TempDir()
	m1 := writeMail(t, dir, "v1", "Bob <bob@example.net>", "alice@example.org", "lunch?")
	m2 := writeMail(t, dir, "v2", "Bob <bob@example.net>", "alice@example.org", "lunch again?")
	m3 := writeMail(t, dir, "list", "Bob <bob@example.net>", "alice@example.org", "newsletter", "Precedence: bulk")
	m4 := writeMail(t, dir, "fwd", "Erin <erin@example.net>", "dave@example.org", "for dave")
	res := pyLMTP(t, s.Addr("lmtp"), []lmtpMsg{
		{From: "bob@example.net", Rcpts: []string{"alice@example.org"}, File: m1},
		{From: "bob@example.net", Rcpts: []string{"alice@example.org"}, File: m2},
		{From: "bob@example.net", Rcpts: []string{"alice@example.org"}, File: m3},
		{From: "erin@example.net", Rcpts: []string{"dave@example.org"}, File: m4},
	})
	for i, r := range res {
		for rc, rep := range r {
			if rep.Code != 250 {
				t.Errorf("message %d to %s: %+v", i, rc, rep)
			}
		}
	}
	got := sink.Wait(2, 20*time.Second)
	time.Sleep(300 * time.Millisecond) // a wrong third message would arrive now
	got = sink.Messages()
	var vac, fwd []outboundtest.Message
	for _, m := range got {
		switch {
		case slices.Equal(m.To, []string{"bob@example.net"}):
			vac = append(vac, m)
		case slices.Equal(m.To, []string{"dave@elsewhere.example"}):
			fwd = append(fwd, m)
		default:
			t.Errorf("unexpected message to %v from %q", m.To, m.From)
		}
	}
	if len(vac) != 1 {
		t.Fatalf("%d vacation replies, want 1 (once per :days, none to bulk mail)\n%s", len(vac), s.Log())
	}
	v := string(vac[0].Data)
	if vac[0].From != "" || !strings.Contains(v, "Auto-Submitted: auto-replied") || !strings.Contains(v, "Subject: Out of office") ||
		!strings.Contains(v, "In-Reply-To: <v1@test>") || !strings.Contains(v, "I am away until Monday.") {
		t.Errorf("vacation reply from %q:\n%s", vac[0].From, v)
	}
	if len(fwd) != 1 || fwd[0].From != "erin@example.net" || !strings.Contains(string(fwd[0].Data), "Subject: for dave") {
		t.Fatalf("redirect: %+v", fwd)
	}
	if got := mailIn(t, data, "alice", "INBOX"); len(got) != 3 {
		t.Errorf("alice INBOX = %v (vacation keeps every message)", got)
	}
	if got := mailIn(t, data, "dave", "INBOX"); !slices.Equal(got, []string{"for dave"}) {
		t.Errorf("dave INBOX = %v (redirect :copy keeps)", got)
	}

	// Two days later (the memory in the state database moved back), bob
	// is answered again: once per :days, not once for ever.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "state.db")+"?_pragma=busy_timeout(15000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r, err := db.Exec(`UPDATE vacation SET sent_at = sent_at - ? WHERE user = 'alice'`, int64(48*time.Hour))
	if n, _ := r.RowsAffected(); err != nil || n != 1 {
		t.Fatalf("rewinding the vacation memory: %v, %d rows", err, n)
	}
	m5 := writeMail(t, dir, "v5", "Bob <bob@example.net>", "alice@example.org", "back yet?")
	pyLMTP(t, s.Addr("lmtp"), []lmtpMsg{{From: "bob@example.net", Rcpts: []string{"alice@example.org"}, File: m5}})
	got = sink.Wait(3, 20*time.Second)
	if len(got) != 3 || !slices.Equal(got[2].To, []string{"bob@example.net"}) || !strings.Contains(string(got[2].Data), "In-Reply-To: <v5@test>") {
		t.Fatalf("after :days: %d messages, last %+v", len(got), got[len(got)-1])
	}
}

func TestServeRefusesBrokenGlobalScript(t *testing.T) {
	data := t.TempDir()
	dir := t.TempDir()
	script := filepath.Join(dir, "global.sieve")
	if err := os.WriteFile(script, []byte("require \"fileinto\";\nif header :contains \"X-Spam-Level\" \"*****\" { fileinto \"junk\" }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "mailmig.toml")
	if err := os.WriteFile(conf, []byte("[sieve]\nglobal_script = \""+script+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runMailmig(t, data, "--config", conf, "serve")
	if code == 0 || !strings.Contains(errOut, "global sieve script") || !strings.Contains(errOut, "line 2") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
}

func TestLMTPGlobalBeforeOnSIGHUP(t *testing.T) {
	data := t.TempDir()
	createUser(t, data, "bob", "pw-bob")
	activateScript(t, data, "bob", `keep;`)
	s := startServeConfig(t, data, "[sieve]\nglobal_before = false\n")
	dir := t.TempDir()
	m1 := writeMail(t, dir, "s1", "x@example.net", "bob@example.org", "s1", "X-Spam-Level: ******")
	m2 := writeMail(t, dir, "s2", "x@example.net", "bob@example.org", "s2", "X-Spam-Level: ******")
	pyLMTP(t, s.Addr("lmtp"), []lmtpMsg{{From: "x@example.net", Rcpts: []string{"bob@example.org"}, File: m1}})
	if err := os.WriteFile(filepath.Join(data, "test.toml"), []byte("[sieve]\nglobal_before = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.Log(), "configuration reloaded") {
		if time.Now().After(deadline) {
			t.Fatalf("no reload logged:\n%s", s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	pyLMTP(t, s.Addr("lmtp"), []lmtpMsg{{From: "x@example.net", Rcpts: []string{"bob@example.org"}, File: m2}})
	if got := mailIn(t, data, "bob", "INBOX"); !slices.Equal(got, []string{"s1"}) {
		t.Errorf("INBOX = %v", got)
	}
	if got := mailIn(t, data, "bob", "junk"); !slices.Equal(got, []string{"s2"}) {
		t.Errorf("junk = %v", got)
	}
}
