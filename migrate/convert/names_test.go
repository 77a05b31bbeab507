package convert

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFolderNames(t *testing.T) {
	// Source paths in byte order, as the plan assigns them.
	tests := []struct {
		rel, old, name string
		renamed        bool
	}{
		{"2009.10", "2009.10", "2009_10", true},
		{".hidden", ".hidden", "_hidden", true},
		{"Entw&APw-rfe", "Entwürfe", "Entwürfe", false},
		{"Gr\xc3\xbcn", "Grün", "Grün", false},
		{"Gr\xfcn", "Grün", "Grün_2", true},
		{"INBOX", "INBOX", "INBOX_2", true},
		{"a.b/c.d", "a.b/c.d", "a_b/c_d", true},
		{"archive.gz", "archive.gz", "archive", true},
		{"ctl\x01name", "ctl\x01name", "ctl_name", true},
		{"inbox", "inbox", "inbox_2", true},
		{"lists/golang", "lists/golang", "lists/golang", false},
		{"shared", "shared", "shared_", true},
		{"shared/project", "shared/project", "shared_/project", true},
		{"sharedfiles", "sharedfiles", "sharedfiles", false},
		{"star*and%percent", "star*and%percent", "star_and_percent", true},
		{"x&-y", "x&y", "x&y", false},
	}
	m, err := newNameMapper("latin1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		old, name, ren := m.mapName(tc.rel)
		if old != tc.old || name != tc.name || (ren != nil) != tc.renamed {
			t.Errorf("%q: old %q name %q renaming %+v; want %q %q %v", tc.rel, old, name, ren, tc.old, tc.name, tc.renamed)
		}
		if ren != nil && (ren.Old != old || ren.New != name || ren.Reason == "") {
			t.Errorf("%q: renaming %+v", tc.rel, ren)
		}
	}
	if _, err := newNameMapper("ebcdic"); err == nil {
		t.Error("unknown charset accepted")
	}
	m2, _ := newNameMapper("cp1252")
	if old, _, _ := m2.mapName("caf\xe9\x80"); old != "café€" {
		t.Errorf("cp1252: %q", old)
	}
}

func TestSafeRel(t *testing.T) {
	for _, bad := range []string{"", "/etc/passwd", "~/x", "../x", "a/../../b", "a/..", "."} {
		if _, err := safeRel(bad); err == nil {
			t.Errorf("safeRel(%q) accepted", bad)
		}
	}
	for in, want := range map[string]string{"a/b": "a/b", "a//b/": "a/b", "./a": "a"} {
		if got, err := safeRel(in); err != nil || got != want {
			t.Errorf("safeRel(%q) = %q, %v", in, got, err)
		}
	}
}

// FuzzMapName: the mapping of old names is total and yields names without
// separators or wildcards (modified UTF-7 itself is fuzzed in
// mailstore/mutf7).
func FuzzMapName(f *testing.F) {
	for _, s := range []string{"Entw&APw-rfe", "&-", "&ZeVnLIqe-", "a&b", "&AGE-", "x", "Gr\xfcn", "a.b/c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// The mapping is total and yields names without separators.
		m, _ := newNameMapper("latin1")
		_, name, _ := m.mapName(s)
		for _, part := range strings.Split(name, "/") {
			if strings.ContainsAny(part, ".*%") || !utf8.ValidString(part) {
				t.Fatalf("mapName(%q) = %q", s, name)
			}
		}
	})
}
