package imap

import (
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// PARTIAL (RFC 5267 §4.4, CONTEXT=SEARCH's return option, also for ESORT):
// RETURN (PARTIAL lo:hi) answers the lo-th to hi-th results (1-based, in
// sequence order for SEARCH, in sort order for SORT) as
// "PARTIAL (lo:hi set)", NIL when the range holds none. The update
// notifications (ADDTO, REMOVEFROM) are in context.go; UPDATE together
// with PARTIAL is refused there with NOUPDATE.

type partialRange struct{ lo, hi uint32 }

// parsePartial reads " lo:hi" after PARTIAL.
func parsePartial(p *parser) (partialRange, error) {
	if err := p.sp(); err != nil {
		return partialRange{}, err
	}
	w := p.word("")
	los, his, ok := strings.Cut(w, ":")
	lo, err1 := strconv.ParseUint(los, 10, 32)
	hi, err2 := strconv.ParseUint(his, 10, 32)
	if !ok || err1 != nil || err2 != nil || lo == 0 || hi == 0 {
		return partialRange{}, p.errorf("bad PARTIAL range %q", w)
	}
	if lo > hi {
		lo, hi = hi, lo
	}
	return partialRange{uint32(lo), uint32(hi)}, nil
}

// write writes " PARTIAL (lo:hi set)" for the results nums, in order;
// ordered keeps the order (SORT) instead of a compact ascending set.
func (r partialRange) write(w *writer, nums []uint32, ordered bool) {
	w.raw(" PARTIAL (").num(r.lo).byte1(':').num(r.hi).sp()
	if int(r.lo) > len(nums) {
		w.raw("NIL)")
		return
	}
	part := nums[r.lo-1 : min(int(r.hi), len(nums))]
	if ordered {
		w.raw(orderedSet(part))
	} else {
		var set imap.SeqSet
		set.AddNum(part...)
		w.raw(set.String())
	}
	w.byte1(')')
}
