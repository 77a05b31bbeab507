package managesieve

import (
	"strconv"
	"strings"
	"testing"

	"mailmig/server/sieve/pigeonholetest"
)

// TestCheckScriptLikeSievec: CHECKSCRIPT and PUTSCRIPT give sievec's
// verdict, with the line of the fault (issue 12 items 3 and 5): scripts
// using hasflag, setflag with a variable and header :index are accepted;
// a constant bad regex, require after a command and addheader with a bad
// field name are refused.
func TestCheckScriptLikeSievec(t *testing.T) {
	scripts := []string{
		`require ["imap4flags", "variables"]; setflag "f" "\\Seen"; if hasflag "f" "\\seen" { keep; }`,
		`require ["index", "fileinto"]; if header :index 2 :last :is "received" "x" { fileinto "INBOX"; }`,
		`require ["include", "duplicate", "spamtest", "ihave", "vacation-seconds"]; include :global "spam"; if duplicate { discard; }`,
		"require \"regex\";\nif header :regex \"subject\" \"a(\" { keep; }",
		"keep;\nrequire \"fileinto\";",
		"require \"editheader\";\naddheader \"Bad Name\" \"x\";",
		"keep\ndiscard;",
	}
	f := start(t, func(s *Server) { s.AllowInsecureAuth = true })
	c, _ := f.dial(t)
	if l := last(c.cmd(`AUTHENTICATE "PLAIN" "` + plain("alice", "wonderland") + `"`)); !strings.HasPrefix(l, "OK") {
		t.Fatalf("AUTHENTICATE: %s", l)
	}
	for _, s := range scripts {
		ref := pigeonholetest.Compile(t, pigeonholetest.Setup{Script: s})
		check := last(c.cmd("CHECKSCRIPT {" + strconv.Itoa(len(s)) + "+}\r\n" + s))
		put := last(c.cmd("PUTSCRIPT \"s\" {" + strconv.Itoa(len(s)) + "+}\r\n" + s))
		for what, l := range map[string]string{"CHECKSCRIPT": check, "PUTSCRIPT": put} {
			if (ref == "") != strings.HasPrefix(l, "OK") {
				t.Errorf("%s %q: %s\nsievec: %s", what, s, l, ref)
			}
			if ref != "" {
				// sievec names the line ("s: line 2: error: ..."); so does mailmig.
				_, after, _ := strings.Cut(ref, ": line ")
				line, _, _ := strings.Cut(after, ":")
				if !strings.Contains(l, "line "+line+",") {
					t.Errorf("%s %q: %s, sievec says line %s", what, s, l, line)
				}
			}
		}
	}
}
