package pwfile

import (
	"strings"
	"testing"
	"time"
)

func TestParseShadow(t *testing.T) {
	in := "root:*:19000:0:99999:7:::\n" +
		"alice:$y$j9T$abc$def:19000:0:99999:7:::\n" +
		"bob:!$6$x$y:19000:0:99999:7:::\n" +
		"gone:$6$x$y:19000:0:99999:7::100:\n" +
		"broken:$6$x$y\n" +
		"+nis::::::::\n" +
		"alice:$6$dup$dup:19000:0:99999:7:::\n" +
		"\n" +
		"carol::19000:0:99999:7:::"
	got, bad, err := Parse(strings.NewReader(in), "shadow", Shadow)
	if err != nil {
		t.Fatal(err)
	}
	if got["alice"].Hash != "$y$j9T$abc$def" || got["alice"].Line != 2 {
		t.Errorf("alice = %+v", got["alice"])
	}
	if got["bob"].Hash != "!$6$x$y" || got["carol"].Hash != "" || got["root"].Hash != "*" {
		t.Errorf("entries = %+v", got)
	}
	if !got["gone"].Expired(time.Now()) || got["alice"].Expired(time.Now()) {
		t.Errorf("expiry wrong: %+v %+v", got["gone"], got["alice"])
	}
	if _, ok := got["broken"]; ok {
		t.Error("a short line was accepted")
	}
	var msgs []string
	for _, b := range bad {
		msgs = append(msgs, b.Error())
	}
	want := []string{
		"shadow:5 (byte 131) (user broken): shadow line has 2 fields, want 9",
		"shadow:6 (byte 145) (user +nis): NIS compat entry (+/-) is not supported; list the users",
		"shadow:7 (byte 158) (user alice): user already defined on line 2; the first line is used",
	}
	if strings.Join(msgs, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(msgs, "\n"), strings.Join(want, "\n"))
	}
}

func TestParsePasswdFile(t *testing.T) {
	in := "# dovecot passwd-file\n" +
		"alice:{SHA512-CRYPT}$6$s$h:1000:1000::/home/alice::\n" +
		"bob:$1$s$h:1001:1001::/home/bob::userdb_quota_rule=*:storage=1G\n" +
		"carol:{PLAIN}secret:1002:1002::/home/carol::\n" +
		"dave:{sha256-crypt}$6$s$h::\n" +
		"erin:{CRYPT}$2y$05$abc\r\n"
	got, bad, err := Parse(strings.NewReader(in), "users", PasswdFile)
	if err != nil {
		t.Fatal(err)
	}
	if got["alice"].Hash != "$6$s$h" || got["bob"].Hash != "$1$s$h" || got["erin"].Hash != "$2y$05$abc" {
		t.Errorf("entries = %+v", got)
	}
	if len(bad) != 2 || bad[0].User != "carol" || bad[1].User != "dave" || bad[0].Line != 4 {
		t.Errorf("bad = %v", bad)
	}
}

func TestLongLine(t *testing.T) {
	in := "a:" + strings.Repeat("x", MaxLine+10) + ":1:2:3:4:5:6:\nb:$6$s$h:1:2:3:4:5::\n"
	got, bad, err := Parse(strings.NewReader(in), "f", Shadow)
	if err != nil || len(bad) != 1 || bad[0].Line != 1 || got["b"].Line != 2 {
		t.Fatalf("got %v bad %v err %v", got, bad, err)
	}
}

// FuzzParse: no panic, every entry and error names a line inside the
// input, and offsets stay inside it.
func FuzzParse(f *testing.F) {
	f.Add("alice:$6$s$h:19000:0:99999:7:::\nbob:!:1::::::\n", true)
	f.Add("alice:{SHA512-CRYPT}$6$s$h:1:1::/h::\n#c\n\n+x\n", false)
	f.Fuzz(func(t *testing.T, in string, shadow bool) {
		format := PasswdFile
		if shadow {
			format = Shadow
		}
		got, bad, err := Parse(strings.NewReader(in), "f", format)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Count(in, "\n") + 1
		for u, e := range got {
			if u != e.User || e.Line < 1 || e.Line > lines || strings.ContainsAny(u, ":\n") {
				t.Fatalf("entry %q %+v", u, e)
			}
		}
		for _, b := range bad {
			if b.Offset < 0 || b.Offset > int64(len(in)) || b.Line < 1 || b.Line > lines {
				t.Fatalf("error %v out of range", b)
			}
		}
	})
}
