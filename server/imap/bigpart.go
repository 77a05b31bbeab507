package imap

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"

	"github.com/emersion/go-imap/v2"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// Body parts (RFC 9051 §6.4.5 BODY[<section>]) and BINARY (RFC 3516 §4)
// of a big message, streamed. go-imap's ExtractBodySection walks the
// MIME tree with streaming readers but collects the part in a buffer;
// sectionStream makes the same walk and hands back the reader instead.
// BINARY comes from binarydecode.go's writeBinary, through a pipe. A
// literal announces its size first, so each answer takes two passes over
// the file: one counts (and, for BINARY, looks for NUL), the second
// sends. Memory stays that of the readers' buffers.
// TestBigMessageStreamSameAnswers holds the answers to the in-memory
// path's.

// sectionStream returns the bytes go-imap would have put in its buffer
// for the section of the CRLF message in r, as a stream; nil when the
// section does not exist.
func sectionStream(r io.Reader, it fetchItem) io.Reader {
	br := bufio.NewReader(r)
	header, err := readHeaderLenient(br)
	if err != nil {
		return nil
	}
	sec := it.section
	parentMediaType, header, body := findPart(header, br, sec.Part)
	if body == nil {
		return nil
	}
	if len(sec.Part) > 0 {
		switch sec.Specifier {
		case imap.PartSpecifierHeader, imap.PartSpecifierText:
			// Only an encapsulated message has a header and a text
			// (sectioncheck.go).
			if !isMessageType(partMediaType(header, parentMediaType)) {
				return nil
			}
			header, body = openPart(header, body, parentMediaType)
		}
	}
	if len(sec.HeaderFields) > 0 {
		keep := make(map[string]struct{})
		for _, k := range sec.HeaderFields {
			keep[strings.ToLower(k)] = struct{}{}
		}
		for field := header.Fields(); field.Next(); {
			if _, ok := keep[strings.ToLower(field.Key())]; !ok {
				field.Del()
			}
		}
	}
	for _, k := range sec.HeaderFieldsNot {
		header.Del(k)
	}
	writeHeader := true
	switch sec.Specifier {
	case imap.PartSpecifierNone:
		writeHeader = len(sec.Part) == 0
	case imap.PartSpecifierText:
		writeHeader = false
	}
	var rs []io.Reader
	if writeHeader {
		var hb bytes.Buffer
		if err := textproto.WriteHeader(&hb, header); err != nil {
			return errReader{err}
		}
		rs = append(rs, &hb)
	}
	switch sec.Specifier {
	case imap.PartSpecifierNone, imap.PartSpecifierText:
		rs = append(rs, body)
	}
	return io.MultiReader(rs...)
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// findPart is go-imap's findMessagePart (imapserver/message.go), which is
// not exported: the part's header and a reader of its body. Parts are
// numbered as dovecot numbers them (RFC 9051 §6.4.5): a part that is not
// multipart is its own part 1, but only a message/rfc822 part has
// numbers below that (BODY[1.1] of a one-part text message is nothing).
func findPart(header textproto.Header, body io.Reader, path []int) (string, textproto.Header, io.Reader) {
	mh := gomessage.Header{Header: header}
	mediaType, _, _ := mh.ContentType()
	if !strings.HasPrefix(mediaType, "multipart/") && len(path) > 0 && path[0] == 1 {
		if len(path) > 1 && !isMessageType(partMediaType(header, "")) {
			return "", textproto.Header{}, nil
		}
		path = path[1:]
	}
	var parentMediaType string
	for i, partNum := range path {
		header, body = openPart(header, body, parentMediaType)
		ph := gomessage.Header{Header: header}
		mediaType, typeParams, _ := ph.ContentType()
		if !strings.HasPrefix(mediaType, "multipart/") {
			if partNum != 1 || (i < len(path)-1 && !isMessageType(partMediaType(header, parentMediaType))) {
				return "", textproto.Header{}, nil
			}
			continue
		}
		if partNum < 1 {
			return "", textproto.Header{}, nil
		}
		mr := textproto.NewMultipartReader(body, typeParams["boundary"])
		for j := 1; j <= partNum; j++ {
			p, err := mr.NextPart()
			if err != nil {
				return "", textproto.Header{}, nil
			}
			if j == partNum {
				parentMediaType, header, body = mediaType, p.Header, p
			}
		}
	}
	return parentMediaType, header, body
}

// openPart is go-imap's openMessagePart: into an encapsulated message.
func openPart(header textproto.Header, body io.Reader, parentMediaType string) (textproto.Header, io.Reader) {
	h := gomessage.Header{Header: header}
	mediaType, _, _ := h.ContentType()
	if !h.Has("Content-Type") && parentMediaType == "multipart/digest" {
		mediaType = "message/rfc822"
	}
	if mediaType == "message/rfc822" || mediaType == "message/global" {
		br := bufio.NewReader(body)
		header, _ = readHeaderLenient(br)
		return header, br
	}
	return header, body
}

// rangeScan counts a stream and reports whether [from, to) holds a NUL.
type rangeScan struct {
	n, from, to int64
	nul         bool
}

func (s *rangeScan) Write(p []byte) (int, error) {
	lo, hi := max(s.from-s.n, 0), min(s.to-s.n, int64(len(p)))
	if lo < hi && bytes.IndexByte(p[lo:hi], 0) >= 0 {
		s.nul = true
	}
	s.n += int64(len(p))
	return len(p), nil
}

// section answers BODY[part...] and BINARY[...] / BINARY.SIZE[...] of a
// big message.
func (b *bigFetch) section(it fetchItem) error {
	c := b.c
	binary := it.kind == "BINARY[]" || it.kind == "BINARY.SIZE[]"
	var pipe *binaryPipe
	open := func() (io.Reader, io.Closer, error) {
		r, cl, err := c.openStream(b.f, b.mi, false)
		if err != nil {
			return nil, nil, err
		}
		if binary {
			// binarydecode.go, streamed through a pipe.
			pipe = newBinaryPipe(r, it.section.Part)
			return pipe, closers{pipe, cl}, nil
		}
		return sectionStream(r, it), cl, nil
	}
	var from, to int64 = 0, 1<<63 - 1
	if p := it.section.Partial; p != nil && it.kind != "BINARY.SIZE[]" {
		from, to = p.Offset, p.Offset+p.Size
	}
	// Pass 1: the size (go-imap answers nothing when reading fails).
	// For BINARY, checkBinary made it.
	scan := &rangeScan{from: from, to: to}
	decoded := false
	if bs, ok := b.binScans[it.name]; ok && binary {
		scan.n, scan.nul, decoded = bs.size, bs.nul, bs.decoded
	} else {
		r, cl, err := open()
		if err != nil {
			return c.storeErr("FETCH", c.sel.mb, err)
		}
		if r != nil {
			if _, err := io.Copy(scan, r); err != nil {
				scan.n, scan.nul = 0, false
			}
		}
		cl.Close()
		decoded = binary && pipe.decoded
	}
	if it.kind == "BINARY.SIZE[]" {
		c.w.raw(it.name).sp().num(uint32(scan.n))
		return nil
	}
	from, to = min(from, scan.n), min(to, scan.n)
	c.w.raw(it.name).sp()
	if it.kind == "BINARY[]" && (scan.nul || decoded) {
		c.w.byte1('~')
	}
	if from == to {
		c.w.literalFrom(strings.NewReader(""), 0)
		return nil
	}
	// Pass 2: the bytes.
	r, cl, err := open()
	if err != nil {
		return c.storeErr("FETCH", c.sel.mb, err)
	}
	defer cl.Close()
	if _, err := io.CopyN(io.Discard, r, from); err == nil {
		if it.kind == "BODY[]" {
			r = &nulReader{r}
		}
		err = c.w.literalFrom(r, to-from)
	}
	if err != nil && c.w.err == nil {
		c.log.Warn("imap: message changed between two reads", "path", b.mi.Path, "err", err)
	}
	if c.w.err != nil {
		return &ioError{c.w.err}
	}
	return nil
}

// nulReader replaces NUL by 0x80 as literalText does.
type nulReader struct{ r io.Reader }

func (n *nulReader) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	replaceNUL(p[:k])
	return k, err
}

// closers closes each in turn.
type closers []io.Closer

func (cs closers) Close() error {
	var err error
	for _, c := range cs {
		err = errors.Join(err, c.Close())
	}
	return err
}
