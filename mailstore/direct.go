package mailstore

import (
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// Big messages are written and verified around the page cache (O_DIRECT).
// A migration streams gigabytes that nobody reads soon: through the page
// cache they would push out what the server and other users have cached,
// and on a VM every page cache page the guest touches for the first time
// costs a host page fault (writing into fresh memory measured ~450 MB/s
// here, against ~900 MB/s and more for direct writes of 256 KiB). Small
// messages, most of a mailbox by count, stay buffered: a direct write is
// a synchronous round trip to the device.

// directChunk is the size from which a message counts as big (one full
// chunk read with more to come); directBuf is the I/O size of big
// messages' writes and of ChecksumFile's reads: each direct request is a
// synchronous round trip to the device, so fewer and larger is better (a
// whole message in one request for most).
const (
	directChunk = 256 << 10
	directBuf   = 1 << 20
)

// directAlign is the alignment of O_DIRECT offsets, lengths and buffers
// (the page size covers every logical block size in use).
const directAlign = 4096

// alignedBuf returns n bytes starting at a directAlign boundary. Go's heap
// does not move objects, so the alignment holds for the buffer's life.
func alignedBuf(n int) []byte {
	b := make([]byte, n+directAlign)
	off := (directAlign - addrMod(b)) & (directAlign - 1)
	return b[off : off+n : off+n]
}

var checkBufs = sync.Pool{New: func() any { b := alignedBuf(directBuf); return &b }}

// ChecksumFile feeds the file at path to w (a hash) and returns its size.
// Files of at least one chunk are read with O_DIRECT where the file
// system allows it, so a verification reads what the device holds and
// leaves the page cache alone; smaller ones are read normally (they were
// written through the cache and are likely still there).
func ChecksumFile(path string, w io.Writer) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	bp := checkBufs.Get().(*[]byte)
	defer checkBufs.Put(bp)
	buf := *bp
	if st, err := f.Stat(); err == nil && st.Size() >= directChunk {
		setDirect(f, true)
	}
	var n int64
	for {
		k, err := f.Read(buf)
		if errors.Is(err, syscall.EINVAL) && setDirect(f, false) {
			continue // the file system refused the direct read: read it normally
		}
		if k > 0 {
			w.Write(buf[:k])
			n += int64(k)
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// writeChunk writes buf[:n] to fh, which is in direct mode if *direct.
// In direct mode the aligned part goes directly and a short tail (the
// message's last bytes) through the cache, which ends direct mode: no
// padding to truncate afterwards (a truncate to an unaligned size made
// ext4 read the last block back synchronously). A file system that
// refuses the direct write gets the chunk through the cache, and so does
// the rest of the file.
func writeChunk(fh *os.File, buf []byte, n int, direct *bool) error {
	if !*direct {
		_, err := fh.Write(buf[:n])
		return err
	}
	a := n &^ (directAlign - 1)
	if a > 0 {
		k, err := fh.Write(buf[:a])
		if err != nil && !errors.Is(err, syscall.EINVAL) {
			return err
		}
		if err != nil {
			a = k // refused: the rest through the cache, from where it stopped
		}
	}
	if a == n {
		return nil
	}
	*direct = false
	if !setDirect(fh, false) {
		return errors.New("cannot leave direct I/O mode")
	}
	_, err := fh.Write(buf[a:n])
	return err
}

// addrMod is b's start address modulo directAlign.
func addrMod(b []byte) int {
	return int(uintptr(unsafe.Pointer(&b[0])) & (directAlign - 1))
}
