package procmailrc

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// FuzzParse: any text parses or fails with a positioned error, never
// panics; every condition's regex either converts to an ERE Go accepts or
// is refused.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("../testdata/rc/*.rc")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(string(b))
	}
	f.Add(":0\n{\n:0\n{\n}\n")
	f.Add("A=\"unterminated\n")
	f.Fuzz(func(t *testing.T, text string) {
		file, err := Parse("rc", text)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error without position: %v", err)
			}
			return
		}
		var walk func([]Item)
		walk = func(items []Item) {
			for _, it := range items {
				r, ok := it.(*Recipe)
				if !ok {
					continue
				}
				for _, c := range r.Conds {
					checkRegex(t, c.Text)
				}
				walk(r.Action.Block)
			}
		}
		walk(file.Items)
	})
}

func checkRegex(t *testing.T, src string) {
	if len(src) > 200 {
		return
	}
	m, ok := ExpandMacros(src)
	if !ok {
		return
	}
	r, err := ParseRegex(m.Header, true)
	if err != nil {
		return
	}
	if fts, err := r.FieldTests(); err == nil {
		for _, ft := range fts {
			if p, err := ft.Emit(); err == nil {
				if _, err := regexp.CompilePOSIX(p); err != nil {
					t.Fatalf("%q → %q does not compile: %v", src, p, err)
				}
			}
		}
	}
	if p, err := r.BodyPattern(); err == nil {
		_ = p
	}
}

// FuzzRegex: procmail regexes never panic the parser or the emitter.
func FuzzRegex(f *testing.F) {
	for _, s := range []string{`^Subject:.*foo`, `^TO_bob@x\.org`, `^FROM_DAEMON`, `^(From|Sender):.*[^a-z]bob\>`, `^X-Spam-Level: \*+$`, `(a|)*b[]x-]`, `[^\]]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkRegex(t, s) })
}
