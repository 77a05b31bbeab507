package convert

import (
	"context"
	"os"
	"testing"
	"time"
)

func TestZZProf(t *testing.T) {
	src := os.Getenv("PROF_SRC")
	if src == "" {
		t.Skip()
	}
	os.RemoveAll("/tmp/prof-out")
	start := time.Now()
	_, err := Run(context.Background(), Options{Inbox: src + "/spool/alice", FoldersDir: src + "/home/alice/mail", Subscriptions: src + "/home/alice/.mailboxlist", Maildir: "/tmp/prof-out/Maildir", Location: time.UTC, Logger: quietLogger(), NoFsync: os.Getenv("PROF_NOFSYNC") != ""})
	t.Logf("%v %v", time.Since(start), err)
}
