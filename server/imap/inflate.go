package imap

import (
	"bufio"
	"errors"
	"io"
)

// An inflater for the client's side of COMPRESS=DEFLATE (RFC 4978,
// RFC 1951) that hands out what it has decoded before it would wait for
// more input. Neither Go's compress/flate nor klauspost/compress (v1.18.0)
// does that for zlib's Z_PARTIAL_FLUSH, which mutt (mutt_zstrm.c) uses
// after each command: the flush ends the data block and starts an empty
// fixed-Huffman block whose last bits zlib keeps back until the next
// command. compress/flate releases a block's output only at a stored
// block; klauspost's reader reads 10 bits beyond a dynamic block's
// end-of-block code before decoding it. Both then sit on mutt's command
// for ever. This one decodes symbol by symbol and returns what it has
// whenever the bits for the next step have not all arrived.
//
// Huffman codes are decoded a bit at a time, canonically (RFC 1951
// §3.2.2): commands are short; a large APPEND inflates at tens of MB/s.

var errCorrupt = errors.New("COMPRESS: corrupt DEFLATE data from client")

// huffman is a canonical code: count[l] codes of length l, symbols in
// code order.
type huffman struct {
	count  [16]uint16
	symbol []uint16
}

// build makes the code from lengths; over-subscribed sets are corrupt,
// incomplete ones are accepted (RFC 1951 allows one distance code).
func (h *huffman) build(lengths []uint8) error {
	h.count = [16]uint16{}
	for _, l := range lengths {
		h.count[l]++
	}
	left := 1
	for l := 1; l < 16; l++ {
		left <<= 1
		left -= int(h.count[l])
		if left < 0 {
			return errCorrupt
		}
	}
	var offs [16]uint16
	for l := 1; l < 15; l++ {
		offs[l+1] = offs[l] + h.count[l]
	}
	h.symbol = make([]uint16, len(lengths))
	for s, l := range lengths {
		if l != 0 {
			h.symbol[offs[l]] = uint16(s)
			offs[l]++
		}
	}
	return nil
}

var (
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	clOrder     = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

	fixedLit, fixedDist huffman
)

func init() {
	var l [288]uint8
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	fixedLit.build(l[:])
	var d [30]uint8
	for i := range d {
		d[i] = 5
	}
	fixedDist.build(d[:])
}

const (
	inflBlockStart = iota // between blocks
	inflStored            // in a stored block, stored bytes left
	inflHuffman           // in a Huffman block
	inflDone              // after the final block
)

// maxUnitBits bounds the bits one literal or length/distance pair takes
// (15+5+15+13).
const maxUnitBits = 48

type inflater struct {
	r      *bufio.Reader
	bits   uint64
	nbits  uint
	window [1 << 15]byte
	wpos   int   // next write position in window
	total  int64 // bytes produced, to check distances
	state  int
	final  bool
	stored int
	lit    *huffman
	dist   *huffman
	dyn    [2]huffman
	// A copy in progress.
	copyLen, copyDist int
	err               error
}

func newDeflateReader(src io.Reader) *inflater {
	return &inflater{r: bufio.NewReaderSize(src, 4096)}
}

// avail is how many bits can be had without waiting.
func (f *inflater) avail() uint { return f.nbits + 8*uint(f.r.Buffered()) }

// need makes n (≤ 56) bits present, waiting for them if necessary.
func (f *inflater) need(n uint) error {
	for f.nbits < n {
		b, err := f.r.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		f.bits |= uint64(b) << f.nbits
		f.nbits += 8
	}
	return nil
}

func (f *inflater) take(n uint) (int, error) {
	if err := f.need(n); err != nil {
		return 0, err
	}
	v := int(f.bits & (1<<n - 1))
	f.bits >>= n
	f.nbits -= n
	return v, nil
}

// decode reads one symbol of h (RFC 1951 §3.2.2; puff's method).
func (f *inflater) decode(h *huffman) (int, error) {
	code, first, index := 0, 0, 0
	for l := 1; l < 16; l++ {
		b, err := f.take(1)
		if err != nil {
			return 0, err
		}
		code |= b
		count := int(h.count[l])
		if code-count < first {
			return int(h.symbol[index+code-first]), nil
		}
		index += count
		first += count
		first <<= 1
		code <<= 1
	}
	return 0, errCorrupt
}

func (f *inflater) put(p []byte, n int, b byte) {
	p[n] = b
	f.window[f.wpos] = b
	f.wpos = (f.wpos + 1) & (len(f.window) - 1)
	f.total++
}

// Read decodes into p; once it has produced something it returns rather
// than wait for input.
func (f *inflater) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if f.copyLen > 0 {
			f.put(p, n, f.window[(f.wpos-f.copyDist)&(len(f.window)-1)])
			f.copyLen--
			n++
			continue
		}
		if f.err != nil {
			break
		}
		var err error
		switch f.state {
		case inflDone:
			err = io.EOF
		case inflBlockStart:
			if n > 0 {
				return n, nil
			}
			err = f.blockHeader()
		case inflStored:
			if f.stored == 0 {
				f.state = inflBlockStart
				if f.final {
					f.state = inflDone
				}
				continue
			}
			if n > 0 && f.avail() < 8 {
				return n, nil
			}
			var b int
			if b, err = f.take(8); err == nil {
				f.put(p, n, byte(b))
				n++
				f.stored--
			}
		case inflHuffman:
			if n > 0 && f.avail() < maxUnitBits {
				return n, nil
			}
			err = f.symbol(p, &n)
		}
		if err != nil {
			f.err = err
		}
	}
	if n > 0 {
		return n, nil
	}
	return 0, f.err
}

// symbol decodes one literal, end of block or length/distance pair
// (RFC 1951 §3.2.5).
func (f *inflater) symbol(p []byte, n *int) error {
	s, err := f.decode(f.lit)
	if err != nil {
		return err
	}
	switch {
	case s < 256:
		f.put(p, *n, byte(s))
		*n++
		return nil
	case s == 256:
		f.state = inflBlockStart
		if f.final {
			f.state = inflDone
		}
		return nil
	}
	s -= 257
	if s >= 29 {
		return errCorrupt
	}
	e, err := f.take(uint(lengthExtra[s]))
	if err != nil {
		return err
	}
	length := int(lengthBase[s]) + e
	d, err := f.decode(f.dist)
	if err != nil {
		return err
	}
	if d >= 30 {
		return errCorrupt
	}
	if e, err = f.take(uint(distExtra[d])); err != nil {
		return err
	}
	dist := int(distBase[d]) + e
	if int64(dist) > f.total {
		return errCorrupt
	}
	f.copyLen, f.copyDist = length, dist
	return nil
}

// blockHeader reads a block's header (RFC 1951 §3.2.3-3.2.7).
func (f *inflater) blockHeader() error {
	h, err := f.take(3)
	if err != nil {
		return err
	}
	f.final = h&1 == 1
	switch h >> 1 {
	case 0:
		// §3.2.4: skip to a byte boundary; LEN, NLEN.
		f.bits >>= f.nbits % 8
		f.nbits -= f.nbits % 8
		v, err := f.take(32)
		if err != nil {
			return err
		}
		if uint16(v) != ^uint16(v>>16) {
			return errCorrupt
		}
		f.stored = v & 0xffff
		f.state = inflStored
	case 1:
		f.lit, f.dist = &fixedLit, &fixedDist
		f.state = inflHuffman
	case 2:
		if err := f.dynamic(); err != nil {
			return err
		}
		f.lit, f.dist = &f.dyn[0], &f.dyn[1]
		f.state = inflHuffman
	default:
		return errCorrupt
	}
	return nil
}

// dynamic reads the code lengths of a dynamic block (§3.2.7).
func (f *inflater) dynamic() error {
	v, err := f.take(14)
	if err != nil {
		return err
	}
	nlen, ndist, ncode := v&31+257, (v>>5)&31+1, (v>>10)+4
	if nlen > 286 || ndist > 30 {
		return errCorrupt
	}
	var lengths [286 + 30]uint8
	for i := 0; i < ncode; i++ {
		l, err := f.take(3)
		if err != nil {
			return err
		}
		lengths[clOrder[i]] = uint8(l)
	}
	var lencode huffman
	if err := lencode.build(lengths[:19]); err != nil {
		return err
	}
	lengths = [286 + 30]uint8{}
	for i := 0; i < nlen+ndist; {
		s, err := f.decode(&lencode)
		if err != nil {
			return err
		}
		if s < 16 {
			lengths[i] = uint8(s)
			i++
			continue
		}
		var rep int
		var val uint8
		switch s {
		case 16:
			if i == 0 {
				return errCorrupt
			}
			val = lengths[i-1]
			r, err := f.take(2)
			if err != nil {
				return err
			}
			rep = 3 + r
		case 17:
			r, err := f.take(3)
			if err != nil {
				return err
			}
			rep = 3 + r
		default:
			r, err := f.take(7)
			if err != nil {
				return err
			}
			rep = 11 + r
		}
		if i+rep > nlen+ndist {
			return errCorrupt
		}
		for ; rep > 0; rep-- {
			lengths[i] = val
			i++
		}
	}
	if lengths[256] == 0 {
		return errCorrupt
	}
	if err := f.dyn[0].build(lengths[:nlen]); err != nil {
		return err
	}
	return f.dyn[1].build(lengths[nlen : nlen+ndist])
}
