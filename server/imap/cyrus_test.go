package imap

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Debian's Cyrus IMAP 3.6 (cyrus-imapd) implements OBJECTID (RFC 8474's
// author's server; the RFC's example transcripts are Cyrus's), which
// Debian's dovecot 2.3.19 does not: it is the reference for the OBJECTID
// differential below.

const (
	cyrusMaster = "/usr/sbin/cyrmaster" // cyrus-common
	// cyrusIMAPD is Debian's cyrus-imapd unpacked by scripts/test-setup
	// (dpkg-deb -x): the package conflicts with dovecot-imapd, which the
	// other tests need installed.
	cyrusIMAPD = "/var/lib/mailmig-test/cyrus-imapd/usr/lib/cyrus/bin/imapd"
)

// startCyrus starts Cyrus's master with one imapd service on a loopback
// port it picks, on a fresh configuration and spool (any password is
// accepted; INBOX is created at login; "/" separator, alternate
// namespace, conversations on so THREADID is computed), and stops it by
// its PID when the test ends. As root it runs as the cyrus user,
// otherwise as the current user.
func startCyrus(t *testing.T) string {
	t.Helper()
	for _, p := range []string{cyrusMaster, cyrusIMAPD} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is missing; run scripts/test-setup (make test does) to install cyrus-common and unpack cyrus-imapd", p)
		}
	}
	dir, err := os.MkdirTemp("", "cyr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{"conf/db", "conf/socket", "conf/proc", "conf/log", "conf/lock", "conf/user", "conf/quota", "conf/sieve", "spool", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	runAs := "cyrus"
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		runAs = u.Username
	}
	conf := filepath.Join(dir, "imapd.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`configdirectory: %[1]s/conf
partition-default: %[1]s/spool
cyrus_user: %[2]s
admins: %[2]s
sasl_pwcheck_method: alwaystrue
sasl_mech_list: PLAIN
allowplaintext: yes
unixhierarchysep: yes
altnamespace: yes
autocreate_quota: 0
conversations: yes
syslog_prefix: mailmig-test
`, dir, runAs)), 0o644)
	os.WriteFile(filepath.Join(dir, "cyrus.conf"), []byte(fmt.Sprintf(`START {
  recover cmd="/usr/lib/cyrus/bin/ctl_cyrusdb -r -C %[1]s"
}
SERVICES {
  imap cmd="%[3]s -C %[1]s" listen="%[2]s" prefork=0
}
EVENTS {
}
`, conf, addr, cyrusIMAPD)), 0o644)
	if os.Geteuid() == 0 {
		u, err := user.Lookup("cyrus")
		if err != nil {
			t.Fatalf("no cyrus user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
			if err == nil {
				err = os.Lchown(p, uid, gid)
			}
			return err
		})
		os.Chmod(dir, 0o755)
	}
	// As a daemon (-d: in the foreground this master exits with
	// "cannot find executable for service"), stopped by the PID it
	// writes; its imapd children end with it.
	pidFile := filepath.Join(dir, "run", "master.pid")
	out, err := exec.Command(cyrusMaster, "-d", "-C", conf, "-M", filepath.Join(dir, "cyrus.conf"), "-p", pidFile).CombinedOutput()
	if err != nil {
		t.Fatalf("cyrus master: %v %s", err, out)
	}
	var pid int
	t.Cleanup(func() {
		if pid <= 0 {
			return
		}
		syscall.Kill(pid, syscall.SIGTERM)
		for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
		if syscall.Kill(pid, 0) == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	for i := 0; i < 100; i++ {
		if pid == 0 {
			if b, err := os.ReadFile(pidFile); err == nil {
				pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			}
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			if pid == 0 {
				t.Fatalf("cyrus master wrote no PID to %s", pidFile)
			}
			return addr
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("cyrus imapd did not listen on %s (its master logs to syslog only)", addr)
	return ""
}

var (
	objectIDLineRE  = regexp.MustCompile(`MAILBOXID \(|EMAILID \(|THREADID \(|^\* SEARCH`)
	objectIDValueRE = regexp.MustCompile(`(MAILBOXID|EMAILID|THREADID) \(([A-Za-z0-9_-]+)\)`)
	statusLineRE    = regexp.MustCompile(`^(\* STATUS (?:"[^"]*"|\S+) \()(.*)\)$`)
	statusItemRE    = regexp.MustCompile(`[A-Z]+ (\([^)]*\)|\S+)`)
	taggedRE        = regexp.MustCompile(`^\S+ (OK|NO|BAD)( \[MAILBOXID \([A-Za-z0-9_-]+\)\])?`)
)

// projectObjectIDs keeps of each step's responses what OBJECTID decides:
// the lines carrying MAILBOXID, EMAILID or THREADID, SEARCH results and
// the tagged status (with a MAILBOXID code), each id replaced by its kind
// and the order in which the session first saw it (two servers choose
// different ids; which ones are equal must agree).
func projectObjectIDs(resp [][]string) [][]string {
	names := map[string]string{}
	count := map[string]int{}
	name := func(kind, v string) string {
		if n, ok := names[v]; ok {
			return n
		}
		count[kind]++
		n := fmt.Sprintf("%s#%d", kind, count[kind])
		names[v] = n
		return n
	}
	mask := func(l string) string { return objectIDValueRE.ReplaceAllString(l, "$1 (x)") }
	// STATUS items in any order (RFC 9051 §7.4), UIDVALIDITY values are
	// each server's.
	status := func(l string) string {
		m := statusLineRE.FindStringSubmatch(l)
		if m == nil {
			return l
		}
		items := statusItemRE.FindAllString(m[2], -1)
		for i, it := range items {
			if strings.HasPrefix(it, "UIDVALIDITY ") {
				items[i] = "UIDVALIDITY V"
			}
		}
		slices.Sort(items)
		return m[1] + strings.Join(items, " ") + ")"
	}
	out := make([][]string, len(resp))
	for i, lines := range resp {
		var keep []string
		for _, l := range lines[:len(lines)-1] {
			if objectIDLineRE.MatchString(l) {
				keep = append(keep, status(l))
			}
		}
		slices.SortStableFunc(keep, func(a, b string) int { return strings.Compare(mask(a), mask(b)) })
		keep = append(keep, taggedRE.FindString(lines[len(lines)-1]))
		for _, l := range keep {
			out[i] = append(out[i], objectIDValueRE.ReplaceAllStringFunc(l, func(m string) string {
				sub := objectIDValueRE.FindStringSubmatch(m)
				return sub[1] + " (" + name(sub[1], sub[2]) + ")"
			}))
		}
		// The tag is the step's own.
		if t := &out[i][len(out[i])-1]; *t != "" {
			*t = strings.SplitN(*t, " ", 2)[1]
		}
	}
	return out
}

// TestObjectIDCyrus runs rfc8474Steps (every RFC 8474 example and the
// cases around them: RENAME with children, DELETE + CREATE, LIST RETURN
// STATUS, MOVE and COPY, SEARCH, syntax errors) against Debian's Cyrus
// IMAP 3.6 and against mailmig, and compares what OBJECTID decides: which
// responses carry which kind of id, which ids are equal (named by order
// of first appearance), SEARCH results and tagged statuses.
func TestObjectIDCyrus(t *testing.T) {
	run := func(addr, pass string) [][]string {
		rc := dialRaw(t, addr)
		rc.send("l LOGIN alice " + pass + "\r\n")
		if l := rc.until("l "); !strings.HasPrefix(l[len(l)-1], "l OK") {
			t.Fatalf("login: %q", l)
		}
		return runObjectIDSteps(t, rc, objectIDBindings{}, rfc8474Steps(), nil)
	}
	theirs := projectObjectIDs(run(startCyrus(t), "any"))
	ours := projectObjectIDs(run(startServer(t).addr, "pw-alice"))
	steps := rfc8474Steps()
	if os.Getenv("OBJECTID_DEBUG") != "" {
		for i := range steps {
			t.Logf("%s\n%s", steps[i].cmd[:min(len(steps[i].cmd), 40)], strings.Join(theirs[i], "\n"))
		}
	}
	for i := range steps {
		if steps[i].grammar {
			continue
		}
		if a, b := strings.Join(ours[i], "\n"), strings.Join(theirs[i], "\n"); a != b {
			t.Errorf("%s\nmailmig:\n%s\ncyrus:\n%s", steps[i].cmd[:min(len(steps[i].cmd), 60)], a, b)
		}
	}
}
