package mailstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailmig/mailstore"
)

// TestMaildirsizeKeptByStoresWithoutLimits is issue 9 item 7: a store
// opened without limits (the converter, the cutover pass) writing into a
// Maildir whose maildirsize exists keeps it right through every write
// (Append, import, Copy, Expunge), and keeps its limits line, so the
// quota IMAP, delivery and `mailmig quota` read never drifts.
func TestMaildirsizeKeptByStoresWithoutLimits(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "Maildir")
	limited, err := mailstore.Open(root, mailstore.Options{CreateRoot: true, NoFsync: true, QuotaBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	in, _ := limited.Folder("INBOX")
	if _, err := in.Append(ctx, strings.NewReader("Subject: a\n\naaaa\n"), nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	limited.Close()

	free, err := mailstore.Open(root, mailstore.Options{NoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer free.Close()
	check := func(step string) {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(root, "maildirsize"))
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if lines[0] != "1048576S" {
			t.Fatalf("%s: limits line %q, want 1048576S", step, lines[0])
		}
		var b, c int64
		for _, l := range lines[1:] {
			var lb, lc int64
			fmt.Sscan(l, &lb, &lc)
			b, c = b+lb, c+lc
		}
		us, err := free.FolderUsages()
		if err != nil {
			t.Fatal(err)
		}
		var sb, sc int64
		for _, u := range us {
			sb, sc = sb+u.Bytes, sc+u.Messages
		}
		if b != sb || c != sc {
			t.Errorf("%s: maildirsize says %d bytes %d messages, the store holds %d bytes %d messages", step, b, c, sb, sc)
		}
	}
	check("after the limited append")
	fin, _ := free.Folder("INBOX")
	if _, err := fin.Append(ctx, strings.NewReader("Subject: b\n\nbbbbbbbb\n"), nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	check("append")
	must(t, free.CreateFolder("Old"))
	im, err := free.Importer("Old", 42)
	must(t, err)
	for i := 1; i <= 3; i++ {
		msg := fmt.Sprintf("Subject: old %d\n\n%s\n", i, strings.Repeat("o", 100*i))
		must(t, im.Add(ctx, strings.NewReader(msg), int64(len(msg)), uint32(i), nil, time.Now()))
	}
	must(t, im.Commit())
	check("import (the converter)")
	old, _ := free.Folder("Old")
	if _, err := old.Copy(ctx, []uint32{1, 2}, fin); err != nil {
		t.Fatal(err)
	}
	check("copy")
	if _, err := old.Expunge(ctx, []uint32{3}); err != nil {
		t.Fatal(err)
	}
	check("expunge")
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
