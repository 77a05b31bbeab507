package imap

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// THREAD (RFC 5256 §4) with the ORDEREDSUBJECT and REFERENCES
// algorithms (§2):
//
//	thread = ["UID" SP] "THREAD" SP thread-alg SP search-charset 1*(SP search-key)
//
// The answer nests message numbers: "(3 6 (4 23)(44 7 96))" is 3 with
// child 6, whose children are 4 (with child 23) and 44 (7, then 96).

// threadNode is a message (num > 0) or a dummy (num == 0) in a thread.
type threadNode struct {
	num      uint32 // sequence number or UID as answered; 0 for a dummy
	seq      uint32 // for ties
	date     int64
	subj     uint64
	reply    bool
	rooted   bool // in the root set already (step 2)
	parent   *threadNode
	children []*threadNode
}

// RFC 5256 §4 THREAD.
func (c *conn) cmdThread(tag string, p *parser, uid bool) error {
	if err := p.sp(); err != nil {
		return err
	}
	start, startOff := p.pos, p.off
	alg, err := p.atom()
	if err != nil {
		return err
	}
	alg = strings.ToUpper(alg)
	if alg != "REFERENCES" && alg != "ORDEREDSUBJECT" && alg != "REFS" {
		return errBad("unknown thread algorithm %s", alg)
	}
	prog, err := c.charsetSearchProgram(p)
	if err != nil {
		return err
	}
	s := c.sel
	ctx, cancel := c.ctx()
	defer cancel()
	snap, err := s.snapshot(ctx)
	if err != nil {
		return c.storeErr("THREAD", s.mb, err)
	}
	if prog.usesModSeq() {
		c.enableCondstore()
	}
	fc := sortCacheFor(s.folder, snap.UIDValidity)
	// After a literal p.line is the line that followed it (sort.go).
	var rk resultKey
	cacheable := p.off == startOff // no literals
	if cacheable {
		rk, cacheable = c.resultKeyFor(snap, &prog, fmt.Sprintf("THREAD %v %s", uid, p.line[start:]))
	}
	if cacheable {
		if out, ok := fc.cachedAnswer(rk); ok {
			c.w.raw(out).crlf()
			return c.ok(tag, "", "THREAD completed", uid)
		}
	}
	hits := c.evalSearch(snap, &prog, false)
	cached := fc.len()
	infos, err := c.threadInfos(ctx, snap, hits)
	if err != nil {
		return c.storeErr("THREAD", s.mb, err)
	}
	nodes := make([]*threadNode, len(hits))
	buf := make([]threadNode, len(hits)) // one allocation for all
	for i, h := range hits {
		n := &buf[i]
		*n = threadNode{num: h.seq, seq: h.seq, date: infos[i].date, subj: infos[i].subj, reply: infos[i].reply}
		if uid {
			n.num = h.mi.UID
		}
		nodes[i] = n
	}
	var roots []*threadNode
	switch alg {
	case "REFERENCES":
		roots = threadReferences(nodes, infos, false)
	case "REFS":
		roots = threadReferences(nodes, infos, true)
	default:
		roots = threadOrderedSubject(nodes)
	}
	var b strings.Builder
	b.WriteString("* THREAD ")
	for _, r := range roots {
		writeThread(&b, r, true)
	}
	if cacheable {
		fc.keepAnswer(rk, b.String())
	}
	c.w.raw(b.String()).crlf()
	releaseLargeSort(len(hits), fc.len()-cached)
	return c.ok(tag, "", "THREAD completed", uid)
}

// byDate orders messages by sent date, then sequence number (§2.2).
func byDate(a, b *threadNode) int {
	if r := cmp.Compare(a.date, b.date); r != 0 {
		return r
	}
	return cmp.Compare(a.seq, b.seq)
}

// threadOrderedSubject is ORDEREDSUBJECT (RFC 5256 §2): messages sorted
// by base subject and sent date; each run of one base subject is a
// thread whose first message is the parent of all the others; threads
// ordered by the sent date of their first message.
func threadOrderedSubject(nodes []*threadNode) []*threadNode {
	sorted := slices.Clone(nodes)
	slices.SortStableFunc(sorted, func(a, b *threadNode) int {
		if r := cmp.Compare(a.subj, b.subj); r != 0 {
			return r
		}
		return byDate(a, b)
	})
	var roots []*threadNode
	for i := 0; i < len(sorted); {
		root := sorted[i]
		j := i + 1
		for j < len(sorted) && sorted[j].subj == root.subj {
			root.children = append(root.children, sorted[j])
			j++
		}
		roots = append(roots, root)
		i = j
	}
	slices.SortStableFunc(roots, byDate)
	return roots
}

// threadReferences is the REFERENCES algorithm (RFC 5256 §2), steps
// numbered as there. refs is dovecot's THREAD=REFS (draft-ietf-morg-inthread):
// no merging by subject (5), and threads ordered by their latest message.
func threadReferences(nodes []*threadNode, infos []threadInfo, refs bool) []*threadNode {
	// (1) Containers by message id.
	byID := make(map[uint64]*threadNode, len(nodes))
	container := func(id uint64) *threadNode {
		n, ok := byID[id]
		if !ok {
			n = &threadNode{}
			byID[id] = n
		}
		return n
	}
	all := make([]*threadNode, 0, len(nodes))
	for i, n := range nodes {
		id := infos[i].msgID
		var self *threadNode
		if id != 0 {
			if ex, ok := byID[id]; ok && ex.num == 0 {
				// A dummy made by a reference: this is the message.
				ex.num, ex.seq, ex.date, ex.subj, ex.reply = n.num, n.seq, n.date, n.subj, n.reply
				self = ex
			} else if !ok {
				byID[id] = n
				self = n
			}
		}
		if self == nil {
			// No id, or a duplicate of an earlier message's: unique.
			self = n
		}
		nodes[i] = self
		all = append(all, self)
		// (1)(A) Link the references' containers in order, unless one
		// already has a parent or it would make a loop.
		refs := infos[i].refs
		var prev *threadNode
		for _, r := range refs {
			cur := container(r)
			if prev != nil && cur.parent == nil && cur != prev && !isAncestor(cur, prev) {
				link(prev, cur)
			}
			prev = cur
		}
		// (1)(B) The last reference is the message's parent, replacing
		// any parent it had, unless that makes a loop.
		if prev != nil && prev != self && !isAncestor(self, prev) {
			if self.parent != nil {
				unlink(self)
			}
			link(prev, self)
		} else if prev == nil && self.parent != nil {
			unlink(self)
		}
	}
	// (2) The root set: containers without a parent, in a stable order
	// (the order of their first appearance).
	var roots []*threadNode
	addRoot := func(n *threadNode) {
		for n.parent != nil {
			n = n.parent
		}
		if !n.rooted {
			n.rooted = true
			roots = append(roots, n)
		}
	}
	for _, n := range all {
		addRoot(n)
	}
	// (3) Prune dummies.
	roots = pruneDummies(roots, true)
	// (4) Sort the root set by sent date (a dummy by its first child
	// after sorting its children).
	for _, r := range roots {
		if r.num == 0 {
			slices.SortStableFunc(r.children, byDate)
		}
	}
	slices.SortStableFunc(roots, func(a, b *threadNode) int { return byDate(dateNode(a), dateNode(b)) })
	// (5) Gather threads with the same base subject.
	if !refs {
		roots = mergeBySubject(roots)
	}
	// (6) Sort every set of siblings by sent date.
	var sortAll func(n *threadNode)
	sortAll = func(n *threadNode) {
		for _, ch := range n.children {
			sortAll(ch)
		}
		slices.SortStableFunc(n.children, func(a, b *threadNode) int { return byDate(dateNode(a), dateNode(b)) })
	}
	for _, r := range roots {
		sortAll(r)
	}
	if refs {
		slices.SortStableFunc(roots, func(a, b *threadNode) int { return byDate(latest(a), latest(b)) })
	}
	return roots
}

// latest is the message of a thread that sorts last by date.
func latest(n *threadNode) *threadNode {
	var best *threadNode
	if n.num != 0 {
		best = n
	}
	for _, ch := range n.children {
		if l := latest(ch); l != nil && (best == nil || byDate(l, best) > 0) {
			best = l
		}
	}
	return best
}

// dateNode is the message whose date a node sorts by: itself, or for a
// dummy its first child (children sorted first).
func dateNode(n *threadNode) *threadNode {
	for n.num == 0 && len(n.children) > 0 {
		n = n.children[0]
	}
	return n
}

func link(parent, child *threadNode) {
	child.parent = parent
	parent.children = append(parent.children, child)
}

func unlink(n *threadNode) {
	p := n.parent
	if p == nil {
		return
	}
	if i := slices.Index(p.children, n); i >= 0 {
		p.children = slices.Delete(p.children, i, i+1)
	}
	n.parent = nil
}

// isAncestor tells whether a is b or above b.
func isAncestor(a, b *threadNode) bool {
	for n := b; n != nil; n = n.parent {
		if n == a {
			return true
		}
	}
	return false
}

// pruneDummies is step (3): a dummy without children goes; a dummy's
// children take its place, unless it is a root with more than one child.
func pruneDummies(list []*threadNode, root bool) []*threadNode {
	var out []*threadNode
	for _, n := range list {
		n.children = pruneDummies(n.children, false)
		for _, ch := range n.children {
			ch.parent = n
		}
		if n.num != 0 {
			out = append(out, n)
			continue
		}
		switch {
		case len(n.children) == 0:
		case root && len(n.children) > 1:
			out = append(out, n)
		default:
			for _, ch := range n.children {
				ch.parent = n.parent
			}
			out = append(out, n.children...)
		}
	}
	return out
}

// subjectOf is the base subject of a root for step (5): a dummy's is its
// first child's.
func subjectOf(n *threadNode) *threadNode {
	if n.num == 0 && len(n.children) > 0 {
		return n.children[0]
	}
	return n
}

// mergeBySubject is step (5).
func mergeBySubject(roots []*threadNode) []*threadNode {
	table := map[uint64]*threadNode{}
	// (5)(B) Fill the table.
	for _, r := range roots {
		s := subjectOf(r)
		if s.subj == 0 {
			continue
		}
		old, ok := table[s.subj]
		if !ok || (r.num == 0 && old.num != 0) || (old.num != 0 && subjectOf(old).reply && !s.reply) {
			table[s.subj] = r
		}
	}
	// (5)(C) Merge. table keeps the containers of (B); replaced says
	// which of them a new dummy stands for.
	var out []*threadNode
	removed := map[*threadNode]bool{}
	replaced := map[*threadNode]*threadNode{}
	for _, r := range roots {
		s := subjectOf(r)
		t, ok := table[s.subj]
		if s.subj == 0 || !ok || t == r {
			out = append(out, r)
			continue
		}
		tgt := t
		if d, ok := replaced[t]; ok {
			tgt = d
		}
		switch {
		case tgt.num == 0 && r.num == 0:
			// Both dummies: one takes the other's children.
			for _, ch := range r.children {
				ch.parent = tgt
			}
			tgt.children = append(tgt.children, r.children...)
			r.children = nil
		case tgt.num == 0:
			link(tgt, r)
		case s.reply && !subjectOf(tgt).reply:
			link(tgt, r)
		default:
			d := &threadNode{}
			replaced[t] = d
			link(d, t)
			link(d, r)
		}
		removed[r] = true
	}
	final := out[:0]
	for _, r := range out {
		if removed[r] {
			continue
		}
		if d, ok := replaced[r]; ok {
			final = append(final, d)
			continue
		}
		final = append(final, r)
	}
	return final
}

// writeThread writes a thread: "(" for a root, then the chain of single
// children, and each set of several children as "(...)(...)".
func writeThread(b *strings.Builder, n *threadNode, root bool) {
	if root {
		b.WriteByte('(')
	}
	first := true
	for {
		if n.num != 0 {
			if !first {
				b.WriteByte(' ')
			}
			b.WriteString(uitoa(n.num))
			first = false
		}
		if len(n.children) == 1 {
			n = n.children[0]
			continue
		}
		if len(n.children) > 1 {
			if !first {
				b.WriteByte(' ')
			}
			for _, ch := range n.children {
				b.WriteByte('(')
				writeThread(b, ch, false)
				b.WriteByte(')')
			}
		}
		break
	}
	if root {
		b.WriteByte(')')
	}
}
