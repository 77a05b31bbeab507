package acl

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestParseNormalize(t *testing.T) {
	got := Parse([]byte("# comment\nuser=bob lr\n-user=eve lr\nanyone  l\nbroken\nuser=kim lrcd\nowner lrwstipekxa\n"))
	want := map[string]string{"user=bob": "lr", "-user=eve": "lr", "anyone": "l", "user=kim": "lrtekx", "owner": AllRights}
	want["user=kim"] = Normalize("lrcd")
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	if Normalize("lrcd") != "lrtekx" {
		t.Errorf("Normalize(lrcd) = %q", Normalize("lrcd"))
	}
	if Normalize("zrl") != "lr" {
		t.Errorf("unknown rights kept")
	}
}

func TestSetRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if err := Set(dir, "bob", "lrs"); err != nil {
		t.Fatal(err)
	}
	if err := Set(dir, "anyone", "l"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, FileName))
	if string(b) != "anyone l\nuser=bob lrs\n" {
		t.Fatalf("file %q", b)
	}
	if err := Set(dir, "bob", ""); err != nil {
		t.Fatal(err)
	}
	a, _ := Read(dir)
	if _, ok := a["user=bob"]; ok || a["anyone"] != "l" {
		t.Fatalf("after revoke: %v", a)
	}
	for _, bad := range []string{"", "bob\nuser=eve lrswipkxtea", "two words", "-bob", "tab\tx"} {
		if err := Set(dir, bad, "lr"); !errors.Is(err, ErrBadIdentifier) {
			t.Errorf("Set(%q): %v", bad, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("user=bob lr\nanyone l\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a := Parse(b)
		for id, r := range a {
			if Normalize(r) != r {
				t.Fatalf("%s: rights %q not normalized", id, r)
			}
		}
	})
}
