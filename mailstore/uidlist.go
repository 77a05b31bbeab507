package mailstore

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// uidlist is the parsed content of dovecot-uidlist.
type uidlist struct {
	Version     int
	UIDValidity uint32
	NextUID     uint32 // max(header N, last UID + 1)
	GUID        string // 32 hex digits
	// Keys maps a file base name to its UID.
	Keys map[string]uint32
	// Order lists the entries in file order (UIDs ascending in a valid
	// file).
	Order []uidEntry
	// Complete is the number of bytes of whole lines parsed; a trailing
	// partial line (a writer appending right now) is ignored.
	Complete int64
	// Header is the first line as read, newline included.
	Header string
	// LastUID is the UID of the last entry.
	LastUID uint32
}

type uidEntry struct {
	UID uint32
	Key string
}

// parseUIDList parses dovecot-uidlist (version 3, and version 1's
// "uidvalidity nextuid" header). Lines: "UID [EXT...] :BASE" (v3) or
// "UID BASE" (v1). An empty input is an empty list with UIDValidity 0.
func parseUIDList(data []byte) (*uidlist, error) {
	ul := &uidlist{Keys: map[string]uint32{}, NextUID: 1}
	if len(data) == 0 {
		return ul, nil
	}
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 {
		return nil, fmt.Errorf("header at byte 0: no complete line")
	}
	if err := ul.parseHeader(string(data[:nl])); err != nil {
		return nil, fmt.Errorf("header at byte 0: %w", err)
	}
	ul.Header = string(data[:nl+1])
	ul.Complete = int64(nl + 1)
	if err := ul.parseMore(data[nl+1:]); err != nil {
		return nil, err
	}
	return ul, nil
}

// parseMore parses the entry lines in data, which starts at byte
// ul.Complete of the file (lines appended since the last parse). A
// partial last line is left for later.
func (ul *uidlist) parseMore(data []byte) error {
	base := ul.Complete
	off := 0
	for {
		nl := bytes.IndexByte(data[off:], '\n')
		if nl < 0 {
			break
		}
		text := string(data[off : off+nl])
		lineOff := base + int64(off)
		off += nl + 1
		if text == "" {
			continue
		}
		sp := strings.IndexByte(text, ' ')
		if sp <= 0 {
			return fmt.Errorf("line at byte %d: no UID", lineOff)
		}
		n, err := strconv.ParseUint(text[:sp], 10, 32)
		if err != nil || n == 0 {
			return fmt.Errorf("line at byte %d: bad UID %q", lineOff, text[:sp])
		}
		uid := uint32(n)
		var key string
		if ul.Version >= 3 {
			i := strings.Index(text, " :")
			if i < 0 {
				return fmt.Errorf("line at byte %d: no ' :' before the file name", lineOff)
			}
			key = text[i+2:]
		} else {
			key = text[sp+1:]
		}
		key = keyOf(key)
		if key == "" || strings.ContainsAny(key, "/\x00") {
			return fmt.Errorf("line at byte %d: bad file name %q", lineOff, key)
		}
		if uid <= ul.LastUID {
			return fmt.Errorf("line at byte %d: UID %d not above %d", lineOff, uid, ul.LastUID)
		}
		if _, dup := ul.Keys[key]; dup {
			return fmt.Errorf("line at byte %d: file %q listed twice", lineOff, key)
		}
		ul.LastUID = uid
		ul.Keys[key] = uid
		ul.Order = append(ul.Order, uidEntry{uid, key})
	}
	ul.Complete = base + int64(off)
	if ul.LastUID != 0 && ul.LastUID >= ul.NextUID {
		if ul.LastUID == 0xffffffff {
			return fmt.Errorf("UID space exhausted")
		}
		ul.NextUID = ul.LastUID + 1
	}
	return nil
}

func (ul *uidlist) parseHeader(h string) error {
	f := strings.Fields(h)
	if len(f) == 0 {
		return fmt.Errorf("empty header")
	}
	switch f[0] {
	case "1":
		ul.Version = 1
		if len(f) < 3 {
			return fmt.Errorf("version 1 header %q: want 3 fields", h)
		}
		v, err1 := strconv.ParseUint(f[1], 10, 32)
		n, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("version 1 header %q: bad number", h)
		}
		ul.UIDValidity, ul.NextUID = uint32(v), uint32(n)
	case "3":
		ul.Version = 3
		for _, t := range f[1:] {
			if len(t) < 2 {
				continue
			}
			switch t[0] {
			case 'V':
				v, err := strconv.ParseUint(t[1:], 10, 32)
				if err != nil {
					return fmt.Errorf("bad UIDVALIDITY %q", t)
				}
				ul.UIDValidity = uint32(v)
			case 'N':
				v, err := strconv.ParseUint(t[1:], 10, 32)
				if err != nil {
					return fmt.Errorf("bad next UID %q", t)
				}
				ul.NextUID = uint32(v)
			case 'G':
				ul.GUID = t[1:]
			}
		}
	default:
		return fmt.Errorf("unsupported version %q", f[0])
	}
	if ul.UIDValidity == 0 {
		return fmt.Errorf("UIDVALIDITY missing or 0")
	}
	if ul.NextUID == 0 {
		ul.NextUID = 1
	}
	return nil
}

// formatUIDList writes a complete version-3 uidlist.
func formatUIDList(w io.Writer, uidValidity, nextUID uint32, guid string, entries []uidEntry) error {
	sort.Slice(entries, func(i, j int) bool { return entries[i].UID < entries[j].UID })
	bw := bufio.NewWriterSize(w, 64<<10)
	fmt.Fprintf(bw, "3 V%d N%d G%s\n", uidValidity, nextUID, guid)
	for _, e := range entries {
		bw.WriteString(strconv.FormatUint(uint64(e.UID), 10))
		bw.WriteString(" :")
		bw.WriteString(e.Key)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

func newGUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return hex.EncodeToString(b[:])
}

// parseKeywords parses dovecot-keywords: "INDEX NAME" lines. Returns names
// by index ("" for gaps). Indexes past 25 are ignored (no letter).
func parseKeywords(data []byte) ([]string, error) {
	var out []string
	off := 0
	for off < len(data) {
		nl := bytes.IndexByte(data[off:], '\n')
		if nl < 0 {
			break // partial last line
		}
		line := string(data[off : off+nl])
		lineOff := off
		off += nl + 1
		if line == "" {
			continue
		}
		sp := strings.IndexByte(line, ' ')
		if sp <= 0 {
			return nil, fmt.Errorf("keywords at byte %d: no index", lineOff)
		}
		idx, err := strconv.Atoi(line[:sp])
		if err != nil || idx < 0 {
			return nil, fmt.Errorf("keywords at byte %d: bad index %q", lineOff, line[:sp])
		}
		name := line[sp+1:]
		if name == "" || strings.ContainsAny(name, " \t\r") {
			return nil, fmt.Errorf("keywords at byte %d: bad keyword %q", lineOff, name)
		}
		if idx >= 26 {
			continue
		}
		for len(out) <= idx {
			out = append(out, "")
		}
		out[idx] = name
	}
	return out, nil
}

func formatKeywords(kw []string) []byte {
	var b bytes.Buffer
	for i, k := range kw {
		if k != "" {
			fmt.Fprintf(&b, "%d %s\n", i, k)
		}
	}
	return b.Bytes()
}

// keywordIndex maps names to indexes.
func keywordIndex(kw []string) map[string]int {
	m := make(map[string]int, len(kw))
	for i, k := range kw {
		if k != "" {
			m[k] = i
		}
	}
	return m
}
