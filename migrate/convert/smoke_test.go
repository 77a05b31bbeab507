package convert

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"
)

func TestSmoke(t *testing.T) {
	os.RemoveAll("/tmp/cv/Maildir")
	rep, err := Run(context.Background(), Options{Inbox: "/tmp/cv/inbox", FoldersDir: "/tmp/cv/home/mail", Subscriptions: "/tmp/cv/home/.mailboxlist", Maildir: "/tmp/cv/Maildir", Location: time.UTC})
	b, _ := json.MarshalIndent(rep, "", "  ")
	t.Logf("%s", b)
	if err != nil {
		t.Fatal(err)
	}
}
