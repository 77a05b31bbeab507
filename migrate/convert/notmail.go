package convert

import (
	"compress/gzip"
	"io"
	"os"

	"mailmig/migrate/mbox"
)

// NotMailFolder is the reason given for a file below the folders directory
// that is not a mail folder (c-client would not open it as a mailbox, see
// mbox.Sniff): it is left behind, never copied or renamed.
const NotMailFolder = "left behind: not a mail folder"

// sniff reads the start of a source (decompressed for .gz) and tells its
// format; ok is false when the file cannot be read (the conversion then
// reports the error itself).
func sniff(s *source) (mbox.Format, bool) {
	f, err := os.Open(s.path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	var in io.Reader = f
	if s.gz {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return 0, false
		}
		defer zr.Close()
		in = zr
	}
	head := make([]byte, mbox.SniffSize)
	n, err := io.ReadFull(in, head)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return 0, false
	}
	return mbox.Sniff(head[:n]), true
}

// sniffFormat is sniff's format, or mbox.Unix when the file cannot be
// read (the reader then reports why).
func sniffFormat(s *source) mbox.Format {
	if f, ok := sniff(s); ok {
		return f
	}
	return mbox.Unix
}
