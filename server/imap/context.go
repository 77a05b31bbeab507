package imap

import (
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"

	"mailmig/mailstore"
)

// CONTEXT=SEARCH's and CONTEXT=SORT's update notifications (RFC 5267
// §4.3): a UID SEARCH or UID SORT with RETURN (UPDATE) stays active until
// CANCELUPDATE or until the mailbox is closed; whenever the selected
// folder's updates are sent (selected.go sendUpdates, i.e. after any
// command and during IDLE), the program is evaluated again and the
// difference is announced as
//
//	* ESEARCH (TAG "t") UID REMOVEFROM (0 set) ADDTO (0 set)
//
// for SEARCH (position 0: results in mailbox order, §4.3.3), as dovecot
// 2.3 writes them (TestSearchUpdateDovecot), and for SORT with the
// positions of §4.3.3/§4.3.4 (sortedUpdateDiff):
//
//	* ESEARCH (TAG "t") UID REMOVEFROM (3 17 5 9:10) ADDTO (1 42 7 40,38)
//
// each pair applied in order to the client's list: REMOVEFROM (p set)
// removes the set's results starting at position p, ADDTO (p set) inserts
// them so that the first is at position p. Expunged messages leave the
// results in a REMOVEFROM before their EXPUNGE responses (§4.3.4).
// Debian's dovecot 2.3.19 does not have CONTEXT=SORT (it answers a UID
// SORT's UPDATE with position 0, as for SEARCH), so the RFC is the judge
// there (TestSortUpdate).
//
// Kept small on purpose: UPDATE is granted only to UID SEARCH whose other
// return options are ALL or none, to UID SORT with any return options
// (§4.3: they do not interact), and to at most maxSearchUpdates per
// session; anything else completes with OK [NOUPDATE "tag"] (§4.3.1) and
// is answered once. A tag of an active UPDATE used again with UPDATE is
// BAD (§4.3, as dovecot).

// maxSearchUpdates is how many UPDATE searches one session may keep.
const maxSearchUpdates = 5

// searchUpdate is one active RETURN (UPDATE) search or sort.
type searchUpdate struct {
	tag   string
	prog  searchKey
	uids  []uint32        // the last announced result, ascending
	sort  []sortCriterion // SORT's criteria; nil for SEARCH
	order []uint32        // SORT: the last announced result in sort order
	// The snapshot and view size last evaluated on: while both stay
	// and the program depends on nothing else (sessionIndependent), the
	// result cannot have changed and is not computed again.
	snap    *mailstore.Snapshot
	viewLen int
}

// updateDiff returns the UIDs in cur but not in old (added) and in old but
// not in cur (removed); both inputs and outputs ascend.
func updateDiff(old, cur []uint32) (added, removed []uint32) {
	i, j := 0, 0
	for i < len(old) || j < len(cur) {
		switch {
		case j == len(cur) || (i < len(old) && old[i] < cur[j]):
			removed = append(removed, old[i])
			i++
		case i == len(old) || cur[j] < old[i]:
			added = append(added, cur[j])
			j++
		default:
			i++
			j++
		}
	}
	return added, removed
}

// posRun is one "position set" pair of ADDTO or REMOVEFROM (RFC 5267
// §4.3.3, §4.3.4): uids in the requested order, the first at pos (1-based).
type posRun struct {
	pos  uint32
	uids []uint32
}

// sortedUpdateDiff turns the sorted result old into cur: the REMOVEFROM
// pairs (applied first, in order) and then the ADDTO pairs. Sort keys
// never change under a UID and ties go by UID, so results in both keep
// their relative order; should they not, everything is removed and
// added again, which is still a correct update.
func sortedUpdateDiff(old, cur []uint32) (removed, added []posRun) {
	inCur := make(map[uint32]bool, len(cur))
	for _, u := range cur {
		inCur[u] = true
	}
	inOld := make(map[uint32]bool, len(old))
	for _, u := range old {
		inOld[u] = true
	}
	var keptOld, keptCur []uint32
	for _, u := range old {
		if inCur[u] {
			keptOld = append(keptOld, u)
		}
	}
	for _, u := range cur {
		if inOld[u] {
			keptCur = append(keptCur, u)
		}
	}
	if !slices.Equal(keptOld, keptCur) {
		clear(inCur)
		clear(inOld)
	}
	// REMOVEFROM: each run of removed results, at the position its first
	// has once the runs before it are gone (§4.3.4).
	kept := 0
	for i := 0; i < len(old); {
		if inCur[old[i]] {
			kept++
			i++
			continue
		}
		j := i
		for j < len(old) && !inCur[old[j]] {
			j++
		}
		removed = append(removed, posRun{uint32(kept + 1), old[i:j]})
		i = j
	}
	// ADDTO: each run of added results at its final position: everything
	// before it is in place by then (§4.3.3).
	for i := 0; i < len(cur); {
		if inOld[cur[i]] {
			i++
			continue
		}
		j := i
		for j < len(cur) && !inOld[cur[j]] {
			j++
		}
		added = append(added, posRun{uint32(i + 1), cur[i:j]})
		i = j
	}
	return removed, added
}

// canUpdate says whether a SEARCH's UPDATE request may be granted (§4.3.1).
func (c *conn) canUpdate(uid bool, ret []string) bool {
	if !uid || len(c.sel.updates) >= maxSearchUpdates {
		return false
	}
	for _, r := range ret {
		if r != "ALL" {
			return false
		}
	}
	return true
}

// canUpdateSort says whether a SORT's UPDATE request may be granted.
func (c *conn) canUpdateSort(uid bool) bool {
	return uid && len(c.sel.updates) < maxSearchUpdates
}

// checkUpdateTag refuses UPDATE with the tag of an active one (RFC 5267
// §4.3: "SHALL result in the server rejecting the searching command with
// a BAD response").
func (c *conn) checkUpdateTag(tag string) error {
	if slices.ContainsFunc(c.sel.updates, func(u *searchUpdate) bool { return u.tag == tag }) {
		return errBad("Duplicate search update tag")
	}
	return nil
}

// sendSearchUpdates re-evaluates the active UPDATE searches and sorts
// (RFC 5267 §4.3) and announces what left and what joined each result.
func (c *conn) sendSearchUpdates() {
	s := c.sel
	if s == nil || len(s.updates) == 0 {
		return
	}
	ctx, cancel := c.ctx()
	defer cancel()
	snap, err := s.snapshot(ctx)
	if err != nil {
		return
	}
	for _, u := range s.updates {
		if u.snap == snap && u.viewLen == len(s.uids) && u.prog.sessionIndependent() {
			continue
		}
		u.snap, u.viewLen = snap, len(s.uids)
		hits := c.evalSearch(snap, &u.prog, false)
		cur := make([]uint32, len(hits))
		for i, h := range hits {
			cur[i] = h.mi.UID
		}
		added, removed := updateDiff(u.uids, cur)
		if len(added) == 0 && len(removed) == 0 {
			continue
		}
		u.uids = cur
		if u.sort == nil {
			c.writeSearchUpdate(u.tag, []posRun{{0, removed}}, []posRun{{0, added}})
			continue
		}
		// Sorting again only when results joined; removals keep the
		// order of the rest.
		var order []uint32
		if len(added) > 0 {
			if err := c.sortHits(ctx, snap, hits, u.sort); err != nil {
				c.log.Warn("imap: SORT update", "mailbox", s.mb.name, "err", err)
				continue
			}
			order = make([]uint32, len(hits))
			for i, h := range hits {
				order[i] = h.mi.UID
			}
		} else {
			order = withoutUIDs(u.order, removed)
		}
		rm, add := sortedUpdateDiff(u.order, order)
		u.order = order
		c.writeSearchUpdate(u.tag, rm, add)
	}
}

// withoutUIDs is list without the UIDs of gone (ascending).
func withoutUIDs(list, gone []uint32) []uint32 {
	out := make([]uint32, 0, len(list))
	for _, u := range list {
		if _, found := slices.BinarySearch(gone, u); !found {
			out = append(out, u)
		}
	}
	return out
}

// sendExpungedFromSearches announces, before the EXPUNGE responses, that
// the messages about to be expunged left the UPDATE results (as dovecot
// orders them, and §4.3.4 requires; snap is the snapshot without them).
func (c *conn) sendExpungedFromSearches(snap *mailstore.Snapshot) {
	for _, u := range c.sel.updates {
		var kept, gone []uint32
		j := 0
		for _, uid := range u.uids {
			for j < len(snap.Messages) && snap.Messages[j].UID < uid {
				j++
			}
			if j < len(snap.Messages) && snap.Messages[j].UID == uid {
				kept = append(kept, uid)
			} else {
				gone = append(gone, uid)
			}
		}
		if len(gone) == 0 {
			continue
		}
		u.uids = kept
		if u.sort == nil {
			c.writeSearchUpdate(u.tag, []posRun{{0, gone}}, nil)
			continue
		}
		order := withoutUIDs(u.order, gone)
		rm, _ := sortedUpdateDiff(u.order, order)
		u.order = order
		c.writeSearchUpdate(u.tag, rm, nil)
	}
}

// writeSearchUpdate writes one ESEARCH response with REMOVEFROM and ADDTO
// (§4.3.3, §4.3.4), nothing when both are empty. Position 0 writes the
// set in mailbox order, others in the order given (ascending runs
// joined, as ESORT's ALL).
func (c *conn) writeSearchUpdate(tag string, removed, added []posRun) {
	empty := func(rs []posRun) bool {
		for _, r := range rs {
			if len(r.uids) > 0 {
				return false
			}
		}
		return true
	}
	if empty(removed) && empty(added) {
		return
	}
	c.w.raw(`* ESEARCH (TAG `).str(tag).raw(") UID")
	for _, item := range []struct {
		name string
		runs []posRun
	}{{"REMOVEFROM", removed}, {"ADDTO", added}} {
		if empty(item.runs) {
			continue
		}
		c.w.raw(" ").raw(item.name).raw(" (")
		first := true
		for _, r := range item.runs {
			if len(r.uids) == 0 {
				continue
			}
			if !first {
				c.w.sp()
			}
			first = false
			c.w.num(r.pos).sp()
			if r.pos == 0 {
				var set imap.UIDSet
				for _, x := range r.uids {
					set.AddNum(imap.UID(x))
				}
				c.w.raw(set.String())
			} else {
				c.w.raw(orderedSet(r.uids))
			}
		}
		c.w.raw(")")
	}
	c.w.crlf()
}

// RFC 5267 §4.5 CANCELUPDATE "tag" *(SP "tag").
func (c *conn) cmdCancelUpdate(tag string, p *parser, _ bool) error {
	if err := p.sp(); err != nil {
		return err
	}
	var tags []string
	for {
		// quoted only (§5; dovecot is as strict).
		if p.peek() != '"' {
			return p.errorf("CANCELUPDATE wants quoted tags")
		}
		t, err := p.quoted()
		if err != nil {
			return err
		}
		tags = append(tags, t)
		if !p.take(' ') {
			break
		}
	}
	if err := p.end(); err != nil {
		return err
	}
	s := c.sel
	for _, t := range tags {
		i := slices.IndexFunc(s.updates, func(u *searchUpdate) bool { return u.tag == t })
		if i < 0 {
			// NO, as dovecot answers it (the RFC does not say).
			return errNo("", "no active UPDATE search %s", strings.ToValidUTF8(t, "?"))
		}
		s.updates = slices.Delete(s.updates, i, i+1)
	}
	return c.ok(tag, "", "CANCELUPDATE completed", true)
}

func init() {
	handlers["CANCELUPDATE"] = handler{states: selectedS, fn: (*conn).cmdCancelUpdate}
	extensionCaps = append(extensionCaps, "CONTEXT=SEARCH", "CONTEXT=SORT") // RFC 5267, context.go
}
