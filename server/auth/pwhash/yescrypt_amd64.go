//go:build amd64 && !purego

package pwhash

// pwxBlocks runs pwxform over the sub-blocks of B exactly as
// pwxBlocksGeneric does, in SSE2 assembly (yescrypt_amd64.s; SSE2 is part
// of amd64): a gather group of two 64-bit lanes is one XMM register, so
// one PMULUDQ, one PADDQ and one PXOR transform both lanes, and the four
// groups and the S-box pointers stay in registers across the sub-blocks.
func pwxBlocks(ctx *pwxCtx, X *[8]uint64, B, V, save []uint64, writeV bool) {
	_ = ctx.S[3*sEntries-1]
	B = B[:len(B)/8*8]
	for len(B) > 0 {
		// At most pwxChunk sub-blocks a call: assembly is not
		// preemptible, and a hash may ask for a huge r.
		n := min(len(B)/8, pwxChunk)
		var vp, sp *uint64
		if V != nil {
			vp = &V[:n*8][0]
			V = V[n*8:]
		}
		if save != nil {
			sp = &save[:n*8][0]
			save = save[n*8:]
		}
		pwxBlocksSSE2(&ctx.S[0], &ctx.pwxState, X, &B[0], vp, sp, n, writeV)
		B = B[n*8:]
	}
}

// pwxChunk bounds one assembly call to ~10 µs (r = 32 is one call).
const pwxChunk = 256

// pwxBlocksSSE2 does pwxBlocks on n sub-blocks at B (and V and save when
// not nil); S is the 16-byte aligned S-box area st's offsets refer to.
//
//go:noescape
func pwxBlocksSSE2(S *uint64, st *pwxState, X *[8]uint64, B, V, save *uint64, n int, writeV bool)
