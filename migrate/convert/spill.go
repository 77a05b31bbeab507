package convert

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// spillMem is how much of a message is kept in memory before the rest
// goes to a temporary file.
const spillMem = 4 << 20

// spill holds one message read ahead (to know its hash before writing
// it) with bounded memory.
type spill struct {
	dir string // for the temporary file ("" = os.TempDir)
	buf bytes.Buffer
	f   *os.File
	n   int64
}

// fill reads all of r, copying it to w as well.
func (s *spill) fill(r io.Reader, w io.Writer) (int64, error) {
	s.reset()
	chunk := make([]byte, 64<<10)
	for {
		k, err := r.Read(chunk)
		if k > 0 {
			w.Write(chunk[:k])
			if err := s.write(chunk[:k]); err != nil {
				return s.n, err
			}
		}
		if err == io.EOF {
			return s.n, nil
		}
		if err != nil {
			return s.n, err
		}
	}
}

func (s *spill) write(p []byte) error {
	s.n += int64(len(p))
	if s.f == nil && s.buf.Len()+len(p) <= spillMem {
		s.buf.Write(p)
		return nil
	}
	if s.f == nil {
		f, err := os.CreateTemp(s.dir, "mailmig-spill-*")
		if err != nil {
			return fmt.Errorf("spill: %w", err)
		}
		os.Remove(f.Name()) // anonymous: gone when closed, even after kill -9
		s.f = f
	}
	_, err := s.f.Write(p)
	return err
}

// reader returns the message read by fill.
func (s *spill) reader() io.Reader {
	if s.f == nil {
		return bytes.NewReader(s.buf.Bytes())
	}
	return io.MultiReader(bytes.NewReader(s.buf.Bytes()), io.NewSectionReader(s.f, 0, s.n-int64(s.buf.Len())))
}

func (s *spill) reset() {
	s.buf.Reset()
	s.n = 0
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	if s.buf.Cap() > spillMem*2 {
		s.buf = bytes.Buffer{}
	}
}
