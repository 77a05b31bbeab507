package delivery

import (
	"bytes"
	"mime"
	"strings"

	"mailmig/server/msgspool"
	"mailmig/server/sieve"
)

// rawField is one header field with its original bytes (folded lines and
// line ends included).
type rawField struct {
	name string // lower case
	raw  []byte
}

// splitHeader splits msg into its header fields and the rest (blank line
// and body). Lines that are not fields end the header.
func splitHeader(msg []byte) (fields []rawField, rest []byte) {
	p := 0
	for p < len(msg) {
		end := bytes.IndexByte(msg[p:], '\n')
		if end < 0 {
			end = len(msg)
		} else {
			end += p + 1
		}
		line := msg[p:end]
		trim := bytes.TrimRight(line, "\r\n")
		if len(trim) == 0 {
			return fields, msg[p:]
		}
		if (trim[0] == ' ' || trim[0] == '\t') && len(fields) > 0 {
			f := &fields[len(fields)-1]
			f.raw = msg[p-len(f.raw) : end]
			p = end
			continue
		}
		c := bytes.IndexByte(trim, ':')
		if c <= 0 || bytes.ContainsAny(trim[:c], " \t") {
			return fields, msg[p:]
		}
		fields = append(fields, rawField{name: strings.ToLower(string(trim[:c])), raw: line})
		p = end
	}
	return fields, msg[p:]
}

func fieldValue(f rawField) string {
	v := f.raw[bytes.IndexByte(f.raw, ':')+1:]
	v = bytes.ReplaceAll(bytes.ReplaceAll(v, []byte("\r\n"), nil), []byte("\n"), nil)
	return strings.TrimSpace(string(v))
}

// applyHeaderEdits applies editheader actions (RFC 5293) in order and
// returns the new message: the edited header section, then msg's bytes
// after head (msgspool.HeaderPrefix of msg), not copied.
func applyHeaderEdits(msg msgspool.Source, head []byte, edits []sieve.HeaderEdit) (msgspool.Source, error) {
	fields, rest := splitHeader(head)
	eol, err := lineEnd(msg, head)
	if err != nil {
		return nil, err
	}
	for _, e := range edits {
		name := strings.ToLower(e.FieldName)
		switch e.Action {
		case "add":
			v := e.Value
			if !isASCII(v) {
				v = mime.QEncoding.Encode("utf-8", v)
			}
			v = strings.NewReplacer("\r", "", "\n", " ").Replace(v)
			f := rawField{name: name, raw: []byte(e.FieldName + ": " + v + eol)}
			if e.Last {
				fields = append(fields, f)
			} else {
				fields = append([]rawField{f}, fields...)
			}
		case "delete":
			if name == "received" || name == "auto-submitted" {
				continue // RFC 5293 §7: never deleted
			}
			var idx []int
			for i, f := range fields {
				if f.name == name {
					idx = append(idx, i)
				}
			}
			drop := map[int]bool{}
			switch {
			case e.Index > 0:
				k := e.Index - 1
				if e.Last {
					k = len(idx) - e.Index
				}
				if k >= 0 && k < len(idx) {
					drop[idx[k]] = true
				}
			case e.Value != "":
				for _, i := range idx {
					if fieldValue(fields[i]) == strings.TrimSpace(e.Value) {
						drop[i] = true
						break
					}
				}
			default:
				for _, i := range idx {
					drop[i] = true
				}
			}
			kept := fields[:0:0]
			for i, f := range fields {
				if !drop[i] {
					kept = append(kept, f)
				}
			}
			fields = kept
		}
	}
	var b bytes.Buffer
	b.Grow(len(head) + 256)
	for _, f := range fields {
		b.Write(f.raw)
	}
	b.Write(rest)
	return msgspool.Concat(msgspool.Bytes(b.Bytes()), msgspool.Section(msg, int64(len(head)))), nil
}

// lineEnd is the line end fields added to msg get: CRLF if its first
// 2000 bytes hold one, else LF. head is msg's start.
func lineEnd(msg msgspool.Source, head []byte) (string, error) {
	start := head
	if len(start) < 2000 && int64(len(start)) < msg.Size() {
		var err error
		if start, err = msgspool.Prefix(msg, 2000); err != nil {
			return "", err
		}
	}
	if bytes.Contains(start[:min(len(start), 2000)], []byte("\r\n")) {
		return "\r\n", nil
	}
	return "\n", nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
