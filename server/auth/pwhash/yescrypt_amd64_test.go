//go:build amd64 && !purego

package pwhash

import (
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"
)

// TestPwxBlocksSSE2MatchesGo runs the assembly and the Go pwxBlocks on
// the same random S-boxes, states and blocks, in every mode SMix uses
// (no V; V read; V read and written; SMix1's save), and requires the
// same X, B, V, save, S-boxes and state afterwards.
func TestPwxBlocksSSE2MatchesGo(t *testing.T) {
	// The assembly reads pwxState by these offsets.
	var st pwxState
	if unsafe.Offsetof(st.s0) != 0 || unsafe.Offsetof(st.s1) != 8 || unsafe.Offsetof(st.s2) != 16 || unsafe.Offsetof(st.w) != 24 {
		t.Fatal("pwxState layout changed; yescrypt_amd64.s reads it by offset")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	fill := func(s []uint64) {
		for i := range s {
			s[i] = rng.Uint64()
		}
	}
	perms := [][3]uintptr{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}
	for iter := 0; iter < 300; iter++ {
		n := 1 + rng.IntN(64)
		if iter%10 == 9 {
			n = pwxChunk + 1 + rng.IntN(2*pwxChunk) // several assembly calls
		}
		mode := iter % 4
		a, g := newPwxCtx(), newPwxCtx()
		fill(a.S)
		copy(g.S, a.S)
		perm := perms[rng.IntN(len(perms))]
		a.pwxState = pwxState{s0: perm[0] * sEntries * 8, s1: perm[1] * sEntries * 8, s2: perm[2] * sEntries * 8, w: uintptr(rng.IntN(sEntries/8)) * 64}
		g.pwxState = a.pwxState
		var xa [8]uint64
		fill(xa[:])
		xg := xa
		Ba := make([]uint64, n*8)
		fill(Ba)
		Bg := slices.Clone(Ba)
		var Va, Vg, Sa, Sg []uint64
		if mode != 0 {
			Va = make([]uint64, n*8)
			fill(Va)
			Vg = slices.Clone(Va)
		}
		if mode == 3 {
			Sa, Sg = make([]uint64, n*8), make([]uint64, n*8)
		}
		writeV := mode == 2
		pwxBlocks(a, &xa, Ba, Va, Sa, writeV)
		pwxBlocksGeneric(g, &xg, Bg, Vg, Sg, writeV)
		switch {
		case xa != xg:
			t.Fatalf("iter %d (n=%d mode %d): X differs", iter, n, mode)
		case !slices.Equal(Ba, Bg):
			t.Fatalf("iter %d (n=%d mode %d): B differs", iter, n, mode)
		case !slices.Equal(Va, Vg):
			t.Fatalf("iter %d (n=%d mode %d): V differs", iter, n, mode)
		case !slices.Equal(Sa, Sg):
			t.Fatalf("iter %d (n=%d mode %d): save differs", iter, n, mode)
		case !slices.Equal(a.S, g.S):
			t.Fatalf("iter %d (n=%d mode %d): S-boxes differ", iter, n, mode)
		case a.pwxState != g.pwxState:
			t.Fatalf("iter %d (n=%d mode %d): state %+v, Go %+v", iter, n, mode, a.pwxState, g.pwxState)
		}
	}
}
