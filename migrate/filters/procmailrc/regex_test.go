package procmailrc

import (
	"strings"
	"testing"
	"time"
)

func fieldTests(t *testing.T, src string, fold bool) string {
	t.Helper()
	r, err := ParseRegex(src, fold)
	if err != nil {
		t.Fatalf("%q: %v", src, err)
	}
	fts, err := r.FieldTests()
	if err != nil {
		return "ERR " + err.Error()
	}
	var parts []string
	for _, f := range fts {
		p, err := f.Emit()
		if err != nil {
			return "ERR " + err.Error()
		}
		parts = append(parts, strings.Join(f.Names, ",")+" "+p)
	}
	return strings.Join(parts, " ; ")
}

func TestFieldTests(t *testing.T) {
	for _, c := range []struct{ re, want string }{
		{`^Subject:.*foo`, `subject ^(.*foo)`},
		{`^Subject: \[list\]`, `subject ^(\[list\])`},
		{`^X-Spam-Status: Yes`, `x-spam-status ^(Yes)`},
		{`^X-Spam-Level: \*\*\*\*\*`, `x-spam-level ^(\*\*\*\*\*)`},
		{`^(From|Sender):.*bob@example\.org`, `from,sender ^(.*bob@example\.org)`},
		{`^Subject: hi$`, `subject ^(hi$)`},
		{`^From.*bob`, `ERR`},
		{`bob`, `ERR`},
		{`^Subj`, `ERR`},
	} {
		got := fieldTests(t, c.re, true)
		if c.want == "ERR" {
			if !strings.HasPrefix(got, "ERR") {
				t.Errorf("%q: got %q, want an error", c.re, got)
			}
			continue
		}
		if got != c.want {
			t.Errorf("%q: got %q, want %q", c.re, got, c.want)
		}
	}
}

func TestMacros(t *testing.T) {
	m, ok := ExpandMacros(`^TO_debian-user@lists\.debian\.org`)
	if !ok {
		t.Fatal("not ok")
	}
	got := fieldTests(t, m.Header, true)
	t.Log(got)
	if !strings.HasPrefix(got, "apparently-resent-to,apparently-to,bcc,cc,") || strings.Contains(got, ";") {
		t.Errorf("^TO_: %s", got)
	}
	for _, mac := range []string{"^FROM_DAEMON", "^FROM_MAILER"} {
		m, _ = ExpandMacros(mac)
		got = fieldTests(t, m.Header, true)
		t.Log(got)
		if strings.HasPrefix(got, "ERR") {
			t.Errorf("%s: %s", mac, got)
		}
	}
}

// TestPathologicalBounded: expressions whose derivatives grow quickly
// are converted or refused within a bounded time (a user's rcfile must not
// stall the migration).
func TestPathologicalBounded(t *testing.T) {
	for _, re := range []string{
		`^Subject:(.*a.*b.*c.*d.*e.*f.*g.*h.*i.*j)*x`,
		`^(((a*)*)*)*:`,
		`^(To|Cc|(a|b|c|d)*(e|f)*)+:.*x`,
		`^(a|b|c|d|e|f|g|h|i|j|k|l|m|n|o|p)*(q|r)*:(.*[^a].*[^b].*[^c])*$`,
		`^Subject:((.*x)*(.*y)*)*(.*z)*$([^>]|$)`,
		strings.Repeat("(", 150) + "^a:" + strings.Repeat(")*", 150),
	} {
		start := time.Now()
		r, err := ParseRegex(re, true)
		if err != nil {
			continue
		}
		if fts, err := r.FieldTests(); err == nil {
			for _, ft := range fts {
				ft.Emit()
			}
		}
		r.VarFieldTest("Subject")
		r.BodyPattern()
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%q took %v", re, d)
		}
	}
}
