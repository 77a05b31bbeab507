//go:build amd64 && !purego

#include "textflag.h"

// yescrypt's pwxform (6 rounds, gather 4, simple 2, 8-bit S-box index)
// over n 64-byte sub-blocks, written here from the yescrypt specification;
// the Go version is pwxBlocksGeneric in yescrypt.go, and
// TestPwxBlocksSSE2MatchesGo requires both to agree.
//
// Registers:
//   X0-X3   the four gather groups of X (two 64-bit lanes each)
//   X4-X7   products, and V's sub-block
//   X8-X11  B's sub-block
//   SI, DI, R8  addresses of S0, S1, S2;  R9  write offset in S2 (bytes)
//   R10 B, R11 V (or 0), R12 save (or 0), R13 sub-blocks left
//   AX, BX, CX, DX  S-box offsets

// PWX_GROUP transforms one gather group G: the low 32 and high 32 bits
// of its first lane, masked with Smask (0xff0), are byte offsets of an
// entry pair in S0 and S1; each lane becomes
// (hi32 * lo32 + S0 entry) ^ S1 entry.
#define PWX_GROUP(G, T, LO, HI) \
	MOVQ G, HI; \
	MOVL HI, LO; \
	SHRQ $32, HI; \
	ANDL $0xff0, LO; \
	ANDL $0xff0, HI; \
	PSHUFD $0xb1, G, T; \
	PMULULQ T, G; \
	PADDQ (SI)(LO*1), G; \
	PXOR (DI)(HI*1), G

#define PWX_ROUND \
	PWX_GROUP(X0, X4, AX, BX); \
	PWX_GROUP(X1, X5, CX, DX); \
	PWX_GROUP(X2, X6, AX, BX); \
	PWX_GROUP(X3, X7, CX, DX)

// PWX_WRITE stores X at S2's write position and advances it (mod 4 KiB).
#define PWX_WRITE \
	MOVO X0, 0(R8)(R9*1); \
	MOVO X1, 16(R8)(R9*1); \
	MOVO X2, 32(R8)(R9*1); \
	MOVO X3, 48(R8)(R9*1); \
	ADDQ $64, R9; \
	ANDQ $0xfff, R9

// func pwxBlocksSSE2(S *uint64, st *pwxState, X *[8]uint64, B, V, save *uint64, n int, writeV bool)
TEXT ·pwxBlocksSSE2(SB), NOSPLIT, $0-57
	MOVQ S+0(FP), DX
	MOVQ st+8(FP), AX
	MOVQ 0(AX), SI
	ADDQ DX, SI
	MOVQ 8(AX), DI
	ADDQ DX, DI
	MOVQ 16(AX), R8
	ADDQ DX, R8
	MOVQ 24(AX), R9
	MOVQ X+16(FP), AX
	MOVOU 0(AX), X0
	MOVOU 16(AX), X1
	MOVOU 32(AX), X2
	MOVOU 48(AX), X3
	MOVQ B+24(FP), R10
	MOVQ V+32(FP), R11
	MOVQ save+40(FP), R12
	MOVQ n+48(FP), R13

loop:
	MOVOU 0(R10), X8
	MOVOU 16(R10), X9
	MOVOU 32(R10), X10
	MOVOU 48(R10), X11
	TESTQ R12, R12
	JZ nosave
	MOVOU X8, 0(R12)
	MOVOU X9, 16(R12)
	MOVOU X10, 32(R12)
	MOVOU X11, 48(R12)
	ADDQ $64, R12

nosave:
	TESTQ R11, R11
	JZ novec
	MOVOU 0(R11), X4
	MOVOU 16(R11), X5
	MOVOU 32(R11), X6
	MOVOU 48(R11), X7
	PXOR X4, X8
	PXOR X5, X9
	PXOR X6, X10
	PXOR X7, X11
	CMPB writeV+56(FP), $0
	JEQ nowrite
	MOVOU X8, 0(R11)
	MOVOU X9, 16(R11)
	MOVOU X10, 32(R11)
	MOVOU X11, 48(R11)

nowrite:
	ADDQ $64, R11

novec:
	PXOR X8, X0
	PXOR X9, X1
	PXOR X10, X2
	PXOR X11, X3

	// Six rounds; rounds 1 to 4 also write X to S2.
	PWX_ROUND
	PWX_ROUND
	PWX_WRITE
	PWX_ROUND
	PWX_WRITE
	PWX_ROUND
	PWX_WRITE
	PWX_ROUND
	PWX_WRITE
	PWX_ROUND

	// S0, S1, S2 = S2, S0, S1
	MOVQ R8, AX
	MOVQ DI, R8
	MOVQ SI, DI
	MOVQ AX, SI

	MOVOU X0, 0(R10)
	MOVOU X1, 16(R10)
	MOVOU X2, 32(R10)
	MOVOU X3, 48(R10)
	ADDQ $64, R10
	DECQ R13
	JNZ loop

	MOVQ X+16(FP), AX
	MOVOU X0, 0(AX)
	MOVOU X1, 16(AX)
	MOVOU X2, 32(AX)
	MOVOU X3, 48(AX)
	MOVQ S+0(FP), DX
	MOVQ st+8(FP), AX
	SUBQ DX, SI
	MOVQ SI, 0(AX)
	SUBQ DX, DI
	MOVQ DI, 8(AX)
	SUBQ DX, R8
	MOVQ R8, 16(AX)
	MOVQ R9, 24(AX)
	RET
