package imap

import (
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"

	"mailmig/mailstore"
)

// CONTEXT=SEARCH's update notifications (RFC 5267 §4.2–4.5): a UID SEARCH
// with RETURN (UPDATE) stays active until CANCELUPDATE or until the
// mailbox is closed; whenever the selected folder's updates are sent
// (selected.go sendUpdates, i.e. after any command and during IDLE), the
// program is evaluated again and the difference is announced as
//
//	* ESEARCH (TAG "t") UID REMOVEFROM (0 set) ADDTO (0 set)
//
// (position 0: SEARCH results are unordered, §4.3); expunged messages
// leave the results in a REMOVEFROM before their EXPUNGE responses. Both
// as dovecot 2.3 writes them (TestSearchUpdateDovecot). Kept small on purpose:
// UPDATE is granted only to UID SEARCH whose other return options are ALL
// or none, and to at most maxSearchUpdates searches per session; anything
// else completes with OK [NOUPDATE "tag"] (§4.2) and is answered once.
// SORT's updates (CONTEXT=SORT) are not implemented and not announced.

// maxSearchUpdates is how many UPDATE searches one session may keep.
const maxSearchUpdates = 5

// searchUpdate is one active RETURN (UPDATE) search.
type searchUpdate struct {
	tag  string
	prog searchKey
	uids []uint32 // the last announced result, ascending
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

// canUpdate says whether a UPDATE request may be granted (§4.2).
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

// sendSearchUpdates re-evaluates the active UPDATE searches (RFC 5267 §4.3,
// §4.4) and announces what left and what joined each result.
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
		var cur []uint32
		for _, h := range c.evalSearch(snap, &u.prog, false) {
			cur = append(cur, h.mi.UID)
		}
		added, removed := updateDiff(u.uids, cur)
		u.uids = cur
		c.writeSearchUpdate(u.tag, removed, added)
	}
}

// sendExpungedFromSearches announces, before the EXPUNGE responses, that
// the messages about to be expunged left the UPDATE results (as dovecot
// orders them; snap is the snapshot without them).
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
		u.uids = kept
		c.writeSearchUpdate(u.tag, gone, nil)
	}
}

// writeSearchUpdate writes one ESEARCH response with REMOVEFROM and ADDTO
// (§4.3, §4.4), nothing when both are empty.
func (c *conn) writeSearchUpdate(tag string, removed, added []uint32) {
	if len(removed) == 0 && len(added) == 0 {
		return
	}
	c.w.raw(`* ESEARCH (TAG `).str(tag).raw(") UID")
	for _, r := range []struct {
		name string
		uids []uint32
	}{{"REMOVEFROM", removed}, {"ADDTO", added}} {
		if len(r.uids) == 0 {
			continue
		}
		var set imap.UIDSet
		for _, x := range r.uids {
			set.AddNum(imap.UID(x))
		}
		c.w.raw(" ").raw(r.name).raw(" (0 ").raw(set.String()).raw(")")
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
		t, err := p.astring()
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
			return errBad("no active UPDATE search %s", strings.ToValidUTF8(t, "?"))
		}
		s.updates = slices.Delete(s.updates, i, i+1)
	}
	return c.ok(tag, "", "CANCELUPDATE completed", true)
}

func init() {
	handlers["CANCELUPDATE"] = handler{states: selectedS, fn: (*conn).cmdCancelUpdate}
	extensionCaps = append(extensionCaps, "CONTEXT=SEARCH") // RFC 5267, context.go
}
