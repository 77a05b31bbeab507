package pigeonholetest

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"mailmig/mailstore"
)

// StoredCopies lists every stored copy of the Maildir at root, sorted, as
// "folder [flags]" (flags lower case, sorted, \Recent left out), with
// " | " and detail(message bytes) appended when detail is set. Both sides
// of a differential test (pigeonhole's Maildir and mailmig's) are read
// through it, so they are described alike.
func StoredCopies(t testing.TB, root string, detail func(msg []byte) string) []string {
	t.Helper()
	s, err := mailstore.Open(root, mailstore.Options{NoFsync: true, CreateRoot: true})
	if err != nil {
		t.Fatal(err)
	}
	infos, err := s.Folders()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, fi := range infos {
		f, err := s.Folder(fi.Name)
		if err != nil {
			t.Fatal(err)
		}
		snap, err := f.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range snap.Messages {
			var fl []string
			for _, x := range m.Flags {
				if !strings.EqualFold(x, `\Recent`) {
					fl = append(fl, strings.ToLower(x))
				}
			}
			slices.Sort(fl)
			line := fmt.Sprintf("%s %v", fi.Name, fl)
			if detail != nil {
				b, err := os.ReadFile(m.Path)
				if err != nil {
					t.Fatal(err)
				}
				line += " | " + detail(b)
			}
			out = append(out, line)
		}
	}
	slices.Sort(out)
	return out
}
