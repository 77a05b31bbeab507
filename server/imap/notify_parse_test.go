package imap

import (
	"bufio"
	"strings"
	"testing"
)

// FuzzParseNotify: any NOTIFY argument line parses or fails cleanly.
func FuzzParseNotify(f *testing.F) {
	for _, s := range []string{
		" NONE",
		" SET (selected (MessageNew (UID FLAGS) MessageExpunge FlagChange))",
		" SET STATUS (personal (MessageNew MessageExpunge)) (subtree (a b) (MessageNew MessageExpunge))",
		" SET (mailboxes \"x y\" (MessageNew MessageExpunge)) (inboxes NONE)",
		" SET (selected (MessageNew",
		" SET (selected (AnnotationChange MessageNew MessageExpunge))",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		p := &parser{r: bufio.NewReader(strings.NewReader("")), line: []byte(line)}
		req, err := parseNotify(p)
		if err == nil && !req.none && len(req.groups) == 0 {
			t.Fatalf("%q: SET without event groups accepted", line)
		}
	})
}
