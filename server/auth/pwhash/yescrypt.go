package pwhash

// yescrypt ($y$), written from the yescrypt specification (yescrypt 1.1,
// the version libxcrypt and Debian's mkpasswd use): the "$y$" setting
// encoding, the KDF with optional pre-hashing, SMix with the pwxform
// block mix and read-write V, and the SCRAM-style final step. Only the
// parameters crypt(3) produces are accepted: the default pwxform flavour
// (6 rounds, gather 4, simple 2, 12 KiB S-boxes) with no ROM, or classic
// scrypt (flavour 0).
//
// Blocks are kept as yescrypt keeps them: 32-bit words "SIMD-shuffled"
// (stored word i is Salsa20's word i*5 mod 16). pwxform reads its 64-bit
// lanes and the S-boxes from that layout, so the shuffle is part of the
// result and not an optimisation.

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/bits"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/crypto/scrypt"
)

// yescrypt flags (the flavour).
const (
	ycRW      = 0x002
	ycDefault = 0x0b6 // RW | ROUNDS_6 | GATHER_4 | SIMPLE_2 | SBOX_12K
	ycFlavor  = 0x3fc
	ycPrehash = 0x10000000
)

// pwxform parameters of the default flavour.
const (
	pwxSimple = 2
	pwxGather = 4
	pwxRounds = 6
	sWidth    = 8
	pwxWords  = pwxGather * pwxSimple * 2 // 16 words = 64 bytes
	sBytes    = 3 * (1 << sWidth) * pwxSimple * 8
	sMask     = ((1 << sWidth) - 1) * pwxSimple * 8
	sEntries  = (1 << sWidth) * pwxSimple // 64-bit entries per S-box
)

// YescryptParams are the cost parameters a "$y$" setting encodes.
type YescryptParams struct {
	Flags   uint32
	N       uint64
	R, P, T uint32
}

var errYescrypt = errors.New("pwhash: malformed yescrypt hash")

// decode64Uint32 reads yescrypt's variable-length integer encoding.
func decode64Uint32(src string, min uint32) (uint32, string, bool) {
	if src == "" {
		return 0, src, false
	}
	c := atoi64(src[0])
	if c < 0 {
		return 0, src, false
	}
	src = src[1:]
	start, end, chars, nbits := uint32(0), uint32(47), 1, uint32(0)
	v := uint64(min)
	for uint32(c) > end {
		v += uint64(end+1-start) << nbits
		start = end + 1
		end = start + (62-end)/2
		chars++
		nbits += 6
	}
	v += uint64(uint32(c)-start) << nbits
	for chars--; chars > 0; chars-- {
		if src == "" {
			return 0, src, false
		}
		c := atoi64(src[0])
		if c < 0 {
			return 0, src, false
		}
		src = src[1:]
		nbits -= 6
		v += uint64(c) << nbits
	}
	if v > 0xffffffff {
		return 0, src, false
	}
	return uint32(v), src, true
}

// encode64Uint32 is decode64Uint32's inverse.
func encode64Uint32(dst []byte, v, min uint32) []byte {
	v -= min
	start, end, chars, nbits := uint32(0), uint32(47), 1, uint32(0)
	for {
		count := uint64(end+1-start) << nbits
		if uint64(v) < count {
			break
		}
		start = end + 1
		end = start + (62-end)/2
		v -= uint32(count)
		chars++
		nbits += 6
	}
	dst = append(dst, itoa64[start+(v>>nbits)])
	for chars--; chars > 0; chars-- {
		nbits -= 6
		dst = append(dst, itoa64[(v>>nbits)&0x3f])
	}
	return dst
}

// decode64 reads yescrypt's byte encoding: little-endian groups of up to
// three bytes, six bits a character, low bits first. Unused high bits of
// a short last group must be zero.
func decode64(src string) ([]byte, bool) {
	var out []byte
	for src != "" {
		var value, nbits uint32
		for src != "" && nbits < 24 {
			c := atoi64(src[0])
			if c < 0 {
				return nil, false
			}
			src = src[1:]
			value |= uint32(c) << nbits
			nbits += 6
		}
		if nbits < 12 {
			return nil, false
		}
		for nbits >= 8 {
			out = append(out, byte(value))
			value >>= 8
			nbits -= 8
		}
		if value != 0 {
			return nil, false
		}
	}
	return out, true
}

func encode64(dst, src []byte) []byte {
	for i := 0; i < len(src); {
		var value, nbits uint32
		for nbits < 24 && i < len(src) {
			value |= uint32(src[i]) << nbits
			nbits += 8
			i++
		}
		for b := uint32(0); b < nbits; b += 6 {
			dst = append(dst, itoa64[value&0x3f])
			value >>= 6
		}
	}
	return dst
}

// ParseYescrypt splits a "$y$" setting or hash into its parameters, the
// encoded prefix (through the salt) and the decoded salt.
func ParseYescrypt(setting string) (p YescryptParams, prefix string, salt []byte, err error) {
	if !strings.HasPrefix(setting, "$y$") {
		return p, "", nil, errYescrypt
	}
	src := setting[3:]
	flavor, src, ok := decode64Uint32(src, 0)
	if !ok {
		return p, "", nil, errYescrypt
	}
	switch {
	case flavor < ycRW:
		p.Flags = flavor
	case flavor <= ycRW+(ycFlavor>>2):
		p.Flags = ycRW + (flavor-ycRW)<<2
	default:
		return p, "", nil, errYescrypt
	}
	nlog2, src, ok := decode64Uint32(src, 1)
	if !ok || nlog2 > 63 {
		return p, "", nil, errYescrypt
	}
	p.N = 1 << nlog2
	if p.R, src, ok = decode64Uint32(src, 1); !ok {
		return p, "", nil, errYescrypt
	}
	p.P = 1
	if src != "" && src[0] != '$' {
		var have uint32
		if have, src, ok = decode64Uint32(src, 1); !ok {
			return p, "", nil, errYescrypt
		}
		if have&1 != 0 {
			if p.P, src, ok = decode64Uint32(src, 2); !ok {
				return p, "", nil, errYescrypt
			}
		}
		if have&2 != 0 {
			if p.T, src, ok = decode64Uint32(src, 1); !ok {
				return p, "", nil, errYescrypt
			}
		}
		if have&4 != 0 || have&8 != 0 || have > 15 {
			// Hash upgrades (g) and ROMs are not used by crypt(3).
			return p, "", nil, ErrUnsupported
		}
	}
	if src == "" || src[0] != '$' {
		return p, "", nil, errYescrypt
	}
	src = src[1:]
	saltStr := src
	if i := strings.LastIndexByte(src, '$'); i >= 0 {
		saltStr = src[:i]
	}
	prefix = setting[:len(setting)-len(src)+len(saltStr)]
	if salt, ok = decode64(saltStr); !ok {
		return p, "", nil, errYescrypt
	}
	return p, prefix, salt, nil
}

// Limits on what a hash may make a login spend: 1 GiB of V is far above
// any crypt(3) setting (Debian's default is 16 MiB).
const (
	yescryptMaxV = 1 << 30
	yescryptMaxT = 64
)

// Yescrypt computes the yescrypt hash of password with the parameters and
// salt of setting (a "$y$" setting or whole hash).
func Yescrypt(password, setting string) (string, error) {
	p, prefix, salt, err := ParseYescrypt(setting)
	if err != nil {
		return "", err
	}
	if p.R == 0 || p.P == 0 || uint64(p.R)*uint64(p.P) >= 1<<30 || p.N < 2 ||
		p.N > yescryptMaxV/128/uint64(p.R) || p.T > yescryptMaxT || p.P > 64 {
		return "", ErrUnsupported
	}
	var dk []byte
	switch {
	case p.Flags == 0:
		if p.T != 0 {
			return "", ErrUnsupported
		}
		dk, err = scrypt.Key([]byte(password), salt, int(p.N), int(p.R), int(p.P), 32)
		if err != nil {
			return "", err
		}
	case p.Flags == ycDefault:
		if p.N/uint64(p.P) < 2 {
			return "", ErrUnsupported
		}
		dk = yescryptKDF([]byte(password), salt, p)
	default:
		return "", ErrUnsupported
	}
	return string(encode64([]byte(prefix+"$"), dk)), nil
}

// yescryptKDF is yescrypt_kdf for the RW flavour: an optional pre-hash
// with N/64 whose result replaces the password, then the main pass.
func yescryptKDF(passwd, salt []byte, p YescryptParams) []byte {
	if p.N/uint64(p.P) >= 0x100 && p.N/uint64(p.P)*uint64(p.R) >= 0x20000 {
		passwd = yescryptBody(passwd, salt, p.Flags|ycPrehash, p.N>>6, p.R, p.P, 0)
	}
	return yescryptBody(passwd, salt, p.Flags, p.N, p.R, p.P, p.T)
}

// vPool keeps V buffers between hashes: allocating and zeroing 16 MiB
// for every login costs as much as a fifth of the hash.
var vPool sync.Pool

func getBuf(n int) *[]uint64 {
	if b, ok := vPool.Get().(*[]uint64); ok && cap(*b) >= n {
		*b = (*b)[:n]
		return b
	}
	b := make([]uint64, n)
	return &b
}

func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

func yescryptBody(passwd, salt []byte, flags uint32, N uint64, r, p, t uint32) []byte {
	key := "yescrypt"
	if flags&ycPrehash != 0 {
		key = "yescrypt-prehash"
	}
	pw := hmacSHA256([]byte(key), passwd)
	bBytes, _ := pbkdf2.Key(sha256.New, string(pw), salt, 1, int(128*r*p))
	copy(pw, bBytes[:32])

	s := int(32 * r) // words per block
	B := make([]uint32, int(p)*s)
	for i := range B {
		B[i] = binary.LittleEndian.Uint32(bBytes[4*i:])
	}
	// V and XY need no zeroing: SMix1 writes V_i before any read of it.
	buf := getBuf(int(N)*s/2 + s)
	defer vPool.Put(buf)
	V, XY := (*buf)[:int(N)*s/2], (*buf)[int(N)*s/2:int(N)*s/2+s]
	smix(B, int(r), N, p, t, flags, V, XY, pw)

	for i, w := range B {
		binary.LittleEndian.PutUint32(bBytes[4*i:], w)
	}
	dk, _ := pbkdf2.Key(sha256.New, string(pw), bBytes, 1, 32)
	if flags&ycPrehash == 0 {
		// ClientKey and StoredKey, as SCRAM (RFC 5802) computes them.
		clientKey := hmacSHA256(dk, []byte("Client Key"))
		sum := sha256.Sum256(clientKey)
		dk = sum[:]
	}
	return dk
}

// pwxCtx is one thread's S-boxes: three boxes of 512 64-bit entries
// each (an entry is two consecutive words of the shuffled layout, low
// word first), which of the three is S0, S1 and S2, and the write
// position in S2. S is 16-byte aligned: the assembly reads an entry pair
// as one 128-bit operand.
type pwxCtx struct {
	S []uint64
	pwxState
}

// pwxState is the part of pwxCtx that changes with every pwxform, as the
// assembly reads and writes it: byte offsets in S of S0, S1 and S2, and
// the byte offset of the next write in S2.
type pwxState struct {
	s0, s1, s2, w uintptr
}

// newPwxCtx allocates the S-boxes, 16-byte aligned. S2 comes first, as
// SMix1 on the S-box area leaves S2, S1, S0 in that order.
func newPwxCtx() *pwxCtx {
	buf := make([]uint64, 3*sEntries+1)
	if uintptr(unsafe.Pointer(&buf[0]))%16 != 0 {
		buf = buf[1:]
	}
	return &pwxCtx{
		S:        buf[: 3*sEntries : 3*sEntries],
		pwxState: pwxState{s0: 2 * sEntries * 8, s1: sEntries * 8, s2: 0},
	}
}

func p2floor(x uint64) uint64 {
	for {
		y := x & (x - 1)
		if y == 0 {
			return x
		}
		x = y
	}
}

func wrap(x, i uint64) uint64 {
	n := p2floor(i)
	return x&(n-1) + (i - n)
}

// smix fills the S-boxes from B, then runs SMix1 and SMix2 on each of the
// p blocks; passwd is updated with HMAC of the first block's tail. B is
// little-endian words; V and XY hold blocks as 64-bit lanes (two
// consecutive words of yescrypt's shuffled layout, low word first), 16r
// lanes a block.
func smix(B []uint32, r int, N uint64, p, t, flags uint32, V, XY []uint64, passwd []byte) {
	s := 32 * r
	nchunk := N / uint64(p)
	nloopAll := nchunk
	if flags&ycRW != 0 {
		if t <= 1 {
			if t != 0 {
				nloopAll *= 2
			}
			nloopAll = (nloopAll + 2) / 3
		} else {
			nloopAll *= uint64(t - 1)
		}
	} else if t != 0 {
		if t == 1 {
			nloopAll += (nloopAll + 1) / 2
		}
		nloopAll *= uint64(t)
	}
	var nloopRW uint64
	if flags&ycRW != 0 {
		nloopRW = nloopAll / uint64(p)
	}
	nchunk &^= 1
	nloopAll = (nloopAll + 1) &^ 1
	nloopRW = (nloopRW + 1) &^ 1

	ctxs := make([]*pwxCtx, p)
	for i := uint32(0); i < p; i++ {
		vchunk := uint64(i) * nchunk
		np := N - vchunk
		if i < p-1 {
			np = nchunk
		}
		Bp := B[int(i)*s : int(i+1)*s]
		Vp := V[int(vchunk)*s/2:]
		var ctx *pwxCtx
		if flags&ycRW != 0 {
			// SMix1 with r=1 and no flags fills the S-boxes; their
			// entries are the lanes of the blocks it stores.
			ctx = newPwxCtx()
			smix1(Bp[:32], 1, sBytes/128, 0, ctx.S, XY, nil)
			if i == 0 {
				var tail [64]byte
				for k := 0; k < 16; k++ {
					binary.LittleEndian.PutUint32(tail[4*k:], Bp[s-16+k])
				}
				copy(passwd, hmacSHA256(tail[:], passwd))
			}
		}
		ctxs[i] = ctx
		smix1(Bp, r, np, flags, Vp, XY, ctx)
		smix2(Bp, r, p2floor(np), nloopRW, flags, Vp, XY, ctx)
	}
	if nloopAll > nloopRW {
		for i := uint32(0); i < p; i++ {
			smix2(B[int(i)*s:int(i+1)*s], r, N, nloopAll-nloopRW, flags&^ycRW, V, XY, ctxs[i])
		}
	}
}

// load converts a block of little-endian words into lanes of the
// shuffled layout (stored word i of each 64-byte sub-block is Salsa20's
// word i*5 mod 16); store is its inverse.
func load(X []uint64, B []uint32, r int) {
	for k := 0; k < 2*r; k++ {
		b := B[k*16 : k*16+16]
		x := X[k*8 : k*8+8]
		for l := 0; l < 8; l++ {
			x[l] = uint64(b[(2*l)*5%16]) | uint64(b[(2*l+1)*5%16])<<32
		}
	}
}

func store(B []uint32, X []uint64, r int) {
	for k := 0; k < 2*r; k++ {
		b := B[k*16 : k*16+16]
		x := X[k*8 : k*8+8]
		for l := 0; l < 8; l++ {
			b[(2*l)*5%16], b[(2*l+1)*5%16] = uint32(x[l]), uint32(x[l]>>32)
		}
	}
}

// integerify reads Salsa20 words 0 and 1 of the last sub-block (stored
// words 0 and 13).
func integerify(X []uint64, r int) uint64 {
	x := X[(2*r-1)*8:]
	return uint64(uint32(x[6]>>32))<<32 | uint64(uint32(x[0]))
}

func smix1(B []uint32, r int, N uint64, flags uint32, V, XY []uint64, ctx *pwxCtx) {
	s := 16 * r
	X, Y := XY[:s], XY[s:2*s]
	load(X, B, r)
	for i := uint64(0); i < N; i++ {
		if flags&ycRW != 0 && i > 1 && ctx != nil {
			// V_i = X and X ^= V_j fused into the block mix.
			j := wrap(integerify(X, r), i)
			blockmixPwxformXor(X, V[int(j)*s:int(j+1)*s], false, V[int(i)*s:int(i+1)*s], ctx, r)
			continue
		}
		copy(V[int(i)*s:int(i+1)*s], X)
		if flags&ycRW != 0 && i > 1 {
			j := wrap(integerify(X, r), i)
			xorBlock(X, V[int(j)*s:int(j+1)*s])
		}
		if ctx != nil {
			blockmixPwxform(X, ctx, r)
		} else {
			blockmixSalsa8(X, Y, r)
		}
	}
	store(B, X, r)
}

func smix2(B []uint32, r int, N, nloop uint64, flags uint32, V, XY []uint64, ctx *pwxCtx) {
	if nloop == 0 {
		return
	}
	s := 16 * r
	X, Y := XY[:s], XY[s:2*s]
	load(X, B, r)
	for i := uint64(0); i < nloop; i++ {
		j := integerify(X, r) & (N - 1)
		Vj := V[int(j)*s : int(j+1)*s]
		if ctx != nil {
			// X ^= V_j (and V_j = X when read-write) fused into the
			// block mix.
			blockmixPwxformXor(X, Vj, flags&ycRW != 0, nil, ctx, r)
			continue
		}
		xorBlock(X, Vj)
		if flags&ycRW != 0 {
			copy(Vj, X)
		}
		blockmixSalsa8(X, Y, r)
	}
	store(B, X, r)
}

func xorBlock(dst, src []uint64) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] ^= src[i]
	}
}

// salsa20 applies the Salsa20 core with the given number of rounds to a
// shuffled 64-byte sub-block (eight lanes). Salsa20's word j is stored
// word j*13 mod 16 (the inverse of the shuffle's i*5 mod 16), low half of
// lane k/2 for an even stored word k, high half for an odd one; the
// words are read into locals straight from there.
func salsa20(B []uint64, rounds int) {
	B = B[:8]
	b0, b1, b2, b3, b4, b5, b6, b7 := B[0], B[1], B[2], B[3], B[4], B[5], B[6], B[7]
	w0, w1, w2, w3 := uint32(b0), uint32(b6>>32), uint32(b5), uint32(b3>>32)
	w4, w5, w6, w7 := uint32(b2), uint32(b0>>32), uint32(b7), uint32(b5>>32)
	w8, w9, w10, w11 := uint32(b4), uint32(b2>>32), uint32(b1), uint32(b7>>32)
	w12, w13, w14, w15 := uint32(b6), uint32(b4>>32), uint32(b3), uint32(b1>>32)
	x0, x1, x2, x3, x4, x5, x6, x7 := w0, w1, w2, w3, w4, w5, w6, w7
	x8, x9, x10, x11, x12, x13, x14, x15 := w8, w9, w10, w11, w12, w13, w14, w15
	rl := bits.RotateLeft32
	for i := 0; i < rounds; i += 2 {
		// columns
		x4 ^= rl(x0+x12, 7)
		x8 ^= rl(x4+x0, 9)
		x12 ^= rl(x8+x4, 13)
		x0 ^= rl(x12+x8, 18)
		x9 ^= rl(x5+x1, 7)
		x13 ^= rl(x9+x5, 9)
		x1 ^= rl(x13+x9, 13)
		x5 ^= rl(x1+x13, 18)
		x14 ^= rl(x10+x6, 7)
		x2 ^= rl(x14+x10, 9)
		x6 ^= rl(x2+x14, 13)
		x10 ^= rl(x6+x2, 18)
		x3 ^= rl(x15+x11, 7)
		x7 ^= rl(x3+x15, 9)
		x11 ^= rl(x7+x3, 13)
		x15 ^= rl(x11+x7, 18)
		// rows
		x1 ^= rl(x0+x3, 7)
		x2 ^= rl(x1+x0, 9)
		x3 ^= rl(x2+x1, 13)
		x0 ^= rl(x3+x2, 18)
		x6 ^= rl(x5+x4, 7)
		x7 ^= rl(x6+x5, 9)
		x4 ^= rl(x7+x6, 13)
		x5 ^= rl(x4+x7, 18)
		x11 ^= rl(x10+x9, 7)
		x8 ^= rl(x11+x10, 9)
		x9 ^= rl(x8+x11, 13)
		x10 ^= rl(x9+x8, 18)
		x12 ^= rl(x15+x14, 7)
		x13 ^= rl(x12+x15, 9)
		x14 ^= rl(x13+x12, 13)
		x15 ^= rl(x14+x13, 18)
	}
	lane := func(lo, hi uint32) uint64 { return uint64(lo) | uint64(hi)<<32 }
	B[0] = lane(x0+w0, x5+w5)
	B[1] = lane(x10+w10, x15+w15)
	B[2] = lane(x4+w4, x9+w9)
	B[3] = lane(x14+w14, x3+w3)
	B[4] = lane(x8+w8, x13+w13)
	B[5] = lane(x2+w2, x7+w7)
	B[6] = lane(x12+w12, x1+w1)
	B[7] = lane(x6+w6, x11+w11)
}

// blockmixSalsa8 is scrypt's BlockMix with Salsa20/8 on shuffled blocks.
func blockmixSalsa8(B, Y []uint64, r int) {
	var X [8]uint64
	copy(X[:], B[(2*r-1)*8:])
	for i := 0; i < 2*r; i++ {
		xorBlock(X[:], B[i*8:(i+1)*8])
		salsa20(X[:], 8)
		copy(Y[i*8:], X[:])
	}
	for i := 0; i < r; i++ {
		copy(B[i*8:(i+1)*8], Y[(2*i)*8:])
		copy(B[(i+r)*8:(i+r+1)*8], Y[(2*i+1)*8:])
	}
}

// pwxform transforms one 64-byte block (eight 64-bit lanes: gather
// groups of two) with the S-boxes. Rounds 1 to PWXrounds-2 also write
// the lanes to S2. The lanes live in local variables (registers).
func pwxform(x *[8]uint64, ctx *pwxCtx) {
	s0 := ctx.S[ctx.s0/8:][:sEntries]
	s1 := ctx.S[ctx.s1/8:][:sEntries]
	s2 := ctx.S[ctx.s2/8:][:sEntries]
	const m = sEntries - 1
	x0, x1, x2, x3, x4, x5, x6, x7 := x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]
	// pair transforms one gather group: p0 and p1 are entry indices,
	// (x & Smask) / 8 of the group's first lane's low and high words.
	pair := func(a, b uint64) (uint64, uint64) {
		p0 := int(uint32(a)&sMask) >> 3
		p1 := int(uint32(a>>32)&sMask) >> 3
		a = ((a>>32)*(a&0xffffffff) + s0[p0&m]) ^ s1[p1&m]
		b = ((b>>32)*(b&0xffffffff) + s0[(p0+1)&m]) ^ s1[(p1+1)&m]
		return a, b
	}
	w := int(ctx.w / 8)
	for i := 0; i < pwxRounds; i++ {
		x0, x1 = pair(x0, x1)
		x2, x3 = pair(x2, x3)
		x4, x5 = pair(x4, x5)
		x6, x7 = pair(x6, x7)
		if i != 0 && i != pwxRounds-1 {
			t := s2[w&m : w&m+8]
			t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7] = x0, x1, x2, x3, x4, x5, x6, x7
			w += 8
		}
	}
	x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7] = x0, x1, x2, x3, x4, x5, x6, x7
	ctx.s0, ctx.s1, ctx.s2 = ctx.s2, ctx.s0, ctx.s1
	ctx.w = uintptr(w&m) * 8
}

// pwxBlocksGeneric is pwxBlocks in Go: for each 64-byte sub-block B_i,
// t = B_i ^ V_i (t = B_i when V is nil), V_i = t when writeV, save_i =
// B_i as it was when save is set; X ^= t, pwxform(X), B_i = X.
func pwxBlocksGeneric(ctx *pwxCtx, X *[8]uint64, B, V, save []uint64, writeV bool) {
	if V != nil {
		V = V[:len(B)]
	}
	if save != nil {
		save = save[:len(B)]
	}
	for i := 0; i+8 <= len(B); i += 8 {
		// Fixed-size array views: the 64-byte copies compile to moves
		// instead of calls to memmove.
		b := (*[8]uint64)(B[i : i+8])
		t := *b
		if save != nil {
			*(*[8]uint64)(save[i : i+8]) = t
		}
		if V != nil {
			v := (*[8]uint64)(V[i : i+8])
			for k := range t {
				t[k] ^= v[k]
			}
			if writeV {
				*v = t
			}
		}
		for k := range X {
			X[k] ^= t[k]
		}
		pwxform(X, ctx)
		*b = *X
	}
}

// blockmixPwxform is BlockMix_pwxform: pwxform over 64-byte sub-blocks,
// then Salsa20/2 on the last one.
func blockmixPwxform(B []uint64, ctx *pwxCtx, r int) {
	last := (2*r - 1) * 8
	X := *(*[8]uint64)(B[last : last+8])
	pwxBlocks(ctx, &X, B[:2*r*8], nil, nil, false)
	salsa20(B[last:last+8], 2)
}

// blockmixPwxformXor is blockmixPwxform(B ^ V), with B ^ V also stored
// into V when writeV, and B as it was into save (SMix1's V_i) when set:
// SMix's copy, XOR and read-write store done in the same pass.
func blockmixPwxformXor(B, V []uint64, writeV bool, save []uint64, ctx *pwxCtx, r int) {
	last := (2*r - 1) * 8
	B, V = B[:2*r*8], V[:2*r*8]
	var X [8]uint64
	for k := range X {
		X[k] = B[last+k] ^ V[last+k]
	}
	pwxBlocks(ctx, &X, B, V, save, writeV)
	salsa20(B[last:last+8], 2)
}
