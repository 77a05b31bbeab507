package managesieve

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailmig/server/auth"
	"mailmig/server/outbound/outboundtest"
	"mailmig/server/sieve"
)

type fakeAuth map[string]string

func (f fakeAuth) Authenticate(_ context.Context, _, user, pass string) error {
	if user == "locked" {
		return fmt.Errorf("user %s: %w", user, auth.ErrRateLimited)
	}
	if p, ok := f[user]; ok && p == pass {
		return nil
	}
	return errors.New("bad password")
}

type fixture struct {
	addr   string
	home   string
	client *tls.Config
}

func start(t *testing.T, configure func(*Server)) *fixture {
	t.Helper()
	cert, pool := outboundtest.SelfSigned(t)
	f := &fixture{home: t.TempDir(), client: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}
	s := &Server{
		Hostname:     "mail.example.org",
		TLSConfig:    &tls.Config{Certificates: []tls.Certificate{cert}},
		Auth:         fakeAuth{"alice": "wonderland"},
		MaxRedirects: 5,
		Storage: func(user string) (*sieve.Storage, error) {
			return &sieve.Storage{
				Dir:           filepath.Join(f.home, user, "sieve"),
				ActiveLink:    filepath.Join(f.home, user, ".dovecot.sieve"),
				MaxScriptSize: 1000,
				MaxScripts:    3,
			}, nil
		},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if configure != nil {
		configure(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return f
}

type client struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func (f *fixture) dial(t *testing.T) (*client, []string) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", f.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { nc.Close() })
	c := &client{t: t, nc: nc, r: bufio.NewReader(nc)}
	lines := c.response()
	return c, lines
}

// response reads lines up to and including the OK/NO/BYE line; literal
// data is appended to its line.
func (c *client) response() []string {
	c.t.Helper()
	var lines []string
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read response: %v (so far %q)", err, lines)
		}
		l = strings.TrimRight(l, "\r\n")
		if i := strings.LastIndexByte(l, '{'); i >= 0 && strings.HasSuffix(l, "}") {
			n, err := strconv.Atoi(l[i+1 : len(l)-1])
			if err == nil {
				buf := make([]byte, n)
				io.ReadFull(c.r, buf)
				l += string(buf)
				rest, _ := c.r.ReadString('\n')
				l += strings.TrimRight(rest, "\r\n")
			}
		}
		lines = append(lines, l)
		for _, p := range []string{"OK", "NO", "BYE"} {
			if l == p || strings.HasPrefix(l, p+" ") {
				return lines
			}
		}
	}
}

func (c *client) cmd(line string) []string {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, line+"\r\n"); err != nil {
		c.t.Fatal(err)
	}
	return c.response()
}

func last(lines []string) string { return lines[len(lines)-1] }

func (c *client) starttls(f *fixture) []string {
	c.t.Helper()
	if l := last(c.cmd("STARTTLS")); !strings.HasPrefix(l, "OK") {
		c.t.Fatalf("STARTTLS: %s", l)
	}
	tc := tls.Client(c.nc, f.client)
	if err := tc.Handshake(); err != nil {
		c.t.Fatal(err)
	}
	c.nc = tc
	c.r = bufio.NewReader(tc)
	return c.response()
}

func plain(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func TestGreetingAndTLS(t *testing.T) {
	f := start(t, nil)
	c, greet := f.dial(t)
	for _, want := range []string{`"IMPLEMENTATION" "mailmig"`, `"SIEVE" "` + sieve.Capability() + `"`, `"STARTTLS"`, `"SASL" ""`, `"VERSION" "1.0"`, `"MAXREDIRECTS" "5"`, `"UNAUTHENTICATE"`} {
		if !contains(greet, want) {
			t.Errorf("greeting lacks %s: %q", want, greet)
		}
	}
	if l := last(c.cmd(`AUTHENTICATE "PLAIN" "` + plain("alice", "wonderland") + `"`)); !strings.HasPrefix(l, "NO (ENCRYPT-NEEDED)") {
		t.Errorf("AUTHENTICATE before TLS: %s", l)
	}
	if l := last(c.cmd("LISTSCRIPTS")); !strings.HasPrefix(l, "NO") {
		t.Errorf("LISTSCRIPTS before auth: %s", l)
	}
	caps := c.starttls(f)
	if !contains(caps, `"SASL" "PLAIN"`) || contains(caps, `"STARTTLS"`) {
		t.Errorf("capabilities after TLS: %q", caps)
	}
	if l := last(c.cmd(`AUTHENTICATE "PLAIN" "` + plain("alice", "nope") + `"`)); l != `NO "authentication failed"` {
		t.Errorf("wrong password: %s", l)
	}
	if l := last(c.cmd(`AUTHENTICATE "PLAIN" "` + plain("locked", "x") + `"`)); !strings.HasPrefix(l, "NO (TRYLATER)") {
		t.Errorf("rate-limited: %s", l)
	}
	// Without an initial response: empty challenge, then the answer.
	io.WriteString(c.nc, "AUTHENTICATE \"PLAIN\"\r\n")
	ch, _ := c.r.ReadString('\n')
	if ch != "\"\"\r\n" {
		t.Fatalf("challenge %q", ch)
	}
	if l := last(c.cmd(`"` + plain("alice", "wonderland") + `"`)); !strings.HasPrefix(l, "OK") {
		t.Fatalf("AUTHENTICATE: %s", l)
	}
	if caps := c.cmd("CAPABILITY"); !contains(caps, `"OWNER" "alice"`) {
		t.Errorf("capabilities after login: %q", caps)
	}
	if l := last(c.cmd("UNAUTHENTICATE")); !strings.HasPrefix(l, "OK") {
		t.Errorf("UNAUTHENTICATE: %s", l)
	}
	if l := last(c.cmd("LISTSCRIPTS")); !strings.HasPrefix(l, "NO") {
		t.Errorf("LISTSCRIPTS after UNAUTHENTICATE: %s", l)
	}
	if l := last(c.cmd("LOGOUT")); !strings.HasPrefix(l, "OK") {
		t.Errorf("LOGOUT: %s", l)
	}
}

func TestScriptLifecycle(t *testing.T) {
	f := start(t, func(s *Server) { s.AllowInsecureAuth = true })
	c, greet := f.dial(t)
	if !contains(greet, `"SASL" "PLAIN"`) {
		t.Fatalf("trusted listener does not offer PLAIN: %q", greet)
	}
	if l := last(c.cmd(`AUTHENTICATE "PLAIN" {` + strconv.Itoa(len(plain("alice", "wonderland"))) + "+}\r\n" + plain("alice", "wonderland"))); !strings.HasPrefix(l, "OK") {
		t.Fatalf("AUTHENTICATE with literal: %s", l)
	}
	script := "require \"fileinto\";\r\nif header :contains \"subject\" \"x\" { fileinto \"X\"; }\r\n"
	put := func(name, body string) string {
		return last(c.cmd("PUTSCRIPT \"" + name + "\" {" + strconv.Itoa(len(body)) + "+}\r\n" + body))
	}
	steps := []struct {
		cmd  string
		want string // prefix of the final line
	}{
		{"LISTSCRIPTS", "OK"},
		{"HAVESPACE \"a\" 500", "OK"},
		{"HAVESPACE \"a\" 5000", "NO (QUOTA/MAXSIZE)"},
		{"CHECKSCRIPT {7+}\r\nkeep;\r\n", "OK"},
		{"CHECKSCRIPT {10+}\r\nkeep;\nfoo", "NO \"line "},
		{"GETSCRIPT \"nosuch\"", "NO (NONEXISTENT)"},
		{"SETACTIVE \"nosuch\"", "NO (NONEXISTENT)"},
		{"NOOP \"t1\"", "OK (TAG \"t1\")"},
		{"BOGUS", "NO"},
		{"PUTSCRIPT \"a\"", "NO"},
	}
	for _, s := range steps {
		if l := last(c.cmd(s.cmd)); !strings.HasPrefix(l, s.want) {
			t.Errorf("%q: %s, want %s", s.cmd, l, s.want)
		}
	}
	if l := put("main", script); !strings.HasPrefix(l, "OK") {
		t.Fatalf("PUTSCRIPT: %s", l)
	}
	if l := put("broken", "require \"fileinto\";\r\nif true {\r\n  fileinto \"x\"\r\n}\r\n"); !strings.HasPrefix(l, "NO \"line 3, column 15") {
		t.Errorf("broken script: %s", l)
	}
	if l := put("big", strings.Repeat("#", 1200)); !strings.HasPrefix(l, "NO (QUOTA/MAXSIZE)") {
		t.Errorf("over-size script: %s", l)
	}
	if l := last(c.cmd("SETACTIVE \"main\"")); !strings.HasPrefix(l, "OK") {
		t.Fatalf("SETACTIVE: %s", l)
	}
	target, err := os.Readlink(filepath.Join(f.home, "alice", ".dovecot.sieve"))
	if err != nil || !strings.HasSuffix(target, "sieve/main.sieve") {
		t.Errorf("active link %q %v", target, err)
	}
	if lines := c.cmd("LISTSCRIPTS"); !contains(lines, `"main" ACTIVE`) {
		t.Errorf("LISTSCRIPTS: %q", lines)
	}
	if lines := c.cmd("GETSCRIPT \"main\""); len(lines) != 2 || lines[0] != "{"+strconv.Itoa(len(script))+"}"+script {
		t.Errorf("GETSCRIPT: %q", lines)
	}
	if l := last(c.cmd("DELETESCRIPT \"main\"")); !strings.HasPrefix(l, "NO (ACTIVE)") {
		t.Errorf("DELETESCRIPT active: %s", l)
	}
	put("other", "keep;\r\n")
	if l := last(c.cmd("RENAMESCRIPT \"other\" \"main\"")); !strings.HasPrefix(l, "NO (ALREADYEXISTS)") {
		t.Errorf("RENAMESCRIPT onto existing: %s", l)
	}
	if l := last(c.cmd("RENAMESCRIPT \"main\" \"renamed\"")); !strings.HasPrefix(l, "OK") {
		t.Errorf("RENAMESCRIPT: %s", l)
	}
	if lines := c.cmd("LISTSCRIPTS"); !contains(lines, `"renamed" ACTIVE`) || contains(lines, `"main"`) {
		t.Errorf("after rename: %q", lines)
	}
	put("third", "keep;\r\n")
	if l := put("fourth", "keep;\r\n"); !strings.HasPrefix(l, "NO (QUOTA/MAXSCRIPTS)") {
		t.Errorf("fourth script: %s", l)
	}
	if l := last(c.cmd("SETACTIVE \"\"")); !strings.HasPrefix(l, "OK") {
		t.Errorf("deactivate: %s", l)
	}
	if l := last(c.cmd("DELETESCRIPT \"renamed\"")); !strings.HasPrefix(l, "OK") {
		t.Errorf("DELETESCRIPT: %s", l)
	}
	if _, err := os.Lstat(filepath.Join(f.home, "alice", ".dovecot.sieve")); !os.IsNotExist(err) {
		t.Errorf("active link still there: %v", err)
	}
}

func TestShutdownSaysBye(t *testing.T) {
	var s *Server
	f := start(t, func(srv *Server) { s = srv })
	c, _ := f.dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	l, _ := c.r.ReadString('\n')
	if !strings.HasPrefix(l, "BYE") {
		t.Errorf("after Shutdown: %q", l)
	}
}
