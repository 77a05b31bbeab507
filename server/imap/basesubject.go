package imap

import (
	"mime"
	"strings"
	"unicode"

	"github.com/emersion/go-message/charset"
	"golang.org/x/text/unicode/norm"
)

// headerDecoder decodes RFC 2047 encoded words in any charset go-message
// knows (latin-1, the Windows code pages, KOI8-R, ...).
var headerDecoder = mime.WordDecoder{CharsetReader: charset.Reader}

// baseSubject extracts the base subject of a Subject field (RFC 5256
// §2.1) and tells whether the subject marked a reply or forward (the
// "Re:", "Fwd:", "(fwd)" or "[fwd: ...]" the algorithm removed; THREAD
// REFERENCES step 5 needs it). The result is case-folded for comparison
// (i;unicode-casemap, RFC 5051, as dovecot compares).
func baseSubject(raw string) (string, bool) {
	// (1) Encoded words to UTF-8, folding and tabs to spaces, runs of
	// white space to one space.
	s := raw
	if d, err := headerDecoder.DecodeHeader(s); err == nil {
		s = d
	}
	// Case-folded first (i;unicode-casemap, as dovecot does), since
	// NFKD may make spaces.
	s = collapseSpace(foldCase(s))
	reply := false
	for {
		// (2) Remove subj-trailer ("(fwd)" / WSP) repeatedly.
		for {
			if strings.HasSuffix(s, " ") {
				s = s[:len(s)-1]
				continue
			}
			if len(s) >= 5 && strings.EqualFold(s[len(s)-5:], "(fwd)") {
				s = s[:len(s)-5]
				reply = true
				continue
			}
			break
		}
		// (3) and (4), repeated until neither matches (6).
		for {
			changed := false
			// (3) Remove subj-leader (*subj-blob subj-refwd / WSP).
			for {
				if strings.HasPrefix(s, " ") {
					s = s[1:]
					changed = true
					continue
				}
				if n := refwdLeader(s); n > 0 {
					s = s[n:]
					reply, changed = true, true
					continue
				}
				break
			}
			// (4) A subj-blob at the start goes if something remains.
			if n := subjBlob(s); n > 0 && s[n:] != "" {
				s = s[n:]
				changed = true
			}
			if !changed {
				break
			}
		}
		// (5) "[fwd:" subject "]": unwrap and start again at (2).
		if len(s) >= 6 && strings.EqualFold(s[:5], "[fwd:") && s[len(s)-1] == ']' {
			s = s[5 : len(s)-1]
			reply = true
			continue
		}
		break
	}
	return s, reply
}

// collapseSpace turns CR, LF and tabs into spaces and runs of spaces into
// one.
func collapseSpace(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			if !space {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

// subjBlob returns the length of a subj-blob at the start of s:
// "[" *BLOBCHAR "]" *WSP, BLOBCHAR being any CHAR but "[" and "]".
func subjBlob(s string) int {
	if !strings.HasPrefix(s, "[") {
		return 0
	}
	i := 1
	for i < len(s) && s[i] != ']' {
		if s[i] == '[' {
			return 0
		}
		i++
	}
	if i == len(s) {
		return 0
	}
	i++
	for i < len(s) && s[i] == ' ' {
		i++
	}
	return i
}

// refwdLeader returns the length of *subj-blob subj-refwd at the start of
// s, subj-refwd being ("re" / ("fw" ["d"])) *WSP [subj-blob] ":".
func refwdLeader(s string) int {
	i := 0
	for {
		n := subjBlob(s[i:])
		if n == 0 {
			break
		}
		i += n
	}
	rest := strings.ToLower(s[i:])
	switch {
	case strings.HasPrefix(rest, "re"):
		i += 2
	case strings.HasPrefix(rest, "fwd"):
		i += 3
	case strings.HasPrefix(rest, "fw"):
		i += 2
	default:
		return 0
	}
	for i < len(s) && s[i] == ' ' {
		i++
	}
	i += subjBlob(s[i:])
	if i < len(s) && s[i] == ':' {
		return i + 1
	}
	return 0
}

// foldCase is the i;unicode-casemap key of s (RFC 5051 §2): each
// character in titlecase, then the string in NFKD ("Ä" sorts as "A" and
// a combining diaeresis, between "APPLES" and "HELLO", as with dovecot).
func foldCase(s string) string {
	return norm.NFKD.String(strings.Map(unicode.ToTitle, s))
}
