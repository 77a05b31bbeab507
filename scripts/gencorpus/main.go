// Command gencorpus writes a realistic UW-IMAP user (INBOX spool, ~/mail
// folders, ~/.mailboxlist) with migrate/corpus, for benchmarks and demos.
//
//	go run ./scripts/gencorpus -dir /tmp/corpus -user alice -size 500MB -folders 40
//
// The spool is DIR/spool/USER and the home DIR/home/USER.
package main

import (
	"flag"
	"fmt"
	"log"

	"mailmig/migrate/corpus"
	"mailmig/migrate/units"
)

func main() {
	dir := flag.String("dir", "", "output `DIR` (required)")
	user := flag.String("user", "alice", "user `NAME`")
	size := flag.String("size", "500MB", "approximate total `SIZE`")
	folders := flag.Int("folders", 40, "number of folders")
	seed := flag.Uint64("seed", 1, "random seed")
	quirks := flag.Bool("quirks", false, "add the quirky folders and messages")
	maxAtt := flag.String("max-attachment", "512KB", "largest attachment `SIZE`")
	huge := flag.String("huge", "0", "give the last INBOX message an attachment of `SIZE` (e.g. 300MB)")
	flag.Parse()
	if *dir == "" {
		flag.Usage()
		log.Fatal("gencorpus: -dir is required")
	}
	total, err := units.ParseSize(*size)
	if err != nil {
		log.Fatalf("gencorpus: -size: %v", err)
	}
	att, err := units.ParseSize(*maxAtt)
	if err != nil {
		log.Fatalf("gencorpus: -max-attachment: %v", err)
	}
	hugeN, err := units.ParseSize(*huge)
	if err != nil {
		log.Fatalf("gencorpus: -huge: %v", err)
	}
	tree, err := corpus.Generate(*dir, *user, corpus.Options{Seed: *seed, Folders: *folders, InboxMessages: 400, FolderMessages: 100,
		TotalBytes: total, MaxAttachment: int(att), Quirks: *quirks, HugeAttachment: int(hugeN)})
	if err != nil {
		log.Fatalf("gencorpus: %v", err)
	}
	n := 0
	for _, f := range tree.Folders {
		n += len(f.Messages)
	}
	fmt.Printf("wrote %d bytes, %d folders, %d messages: inbox %s, home %s\n", tree.SourceBytes, len(tree.Folders), n, tree.Inbox, tree.Home)
}
