//go:build !amd64 || purego

package pwhash

// pwxBlocks runs pwxform over the sub-blocks of B (see pwxBlocksGeneric);
// without the amd64 assembly it is the Go version.
func pwxBlocks(ctx *pwxCtx, X *[8]uint64, B, V, save []uint64, writeV bool) {
	pwxBlocksGeneric(ctx, X, B, V, save, writeV)
}
