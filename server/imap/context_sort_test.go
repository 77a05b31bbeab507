package imap

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// parseOrderedSet reads a sequence-set in the order written, a range
// expanding ascending (RFC 5267 §3.2: 12:10 is 10,11,12).
func parseOrderedSet(t *testing.T, s string) []uint32 {
	t.Helper()
	var out []uint32
	for _, part := range strings.Split(s, ",") {
		a, b, isRange := strings.Cut(part, ":")
		lo, err1 := strconv.ParseUint(a, 10, 32)
		hi, err2 := lo, error(nil)
		if isRange {
			hi, err2 = strconv.ParseUint(b, 10, 32)
		}
		if err1 != nil || err2 != nil {
			t.Fatalf("bad sequence-set %q", s)
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		for n := lo; n <= hi; n++ {
			out = append(out, uint32(n))
		}
	}
	return out
}

// applyContextUpdate applies the REMOVEFROM and ADDTO items of one
// ESEARCH response to a client's copy of a sorted result, as RFC 5267
// §4.3.3 and §4.3.4 tell a client to: each pair in order; a REMOVEFROM's
// set must be at its position.
func applyContextUpdate(t *testing.T, list []uint32, line string) []uint32 {
	t.Helper()
	for _, m := range regexp.MustCompile(`(REMOVEFROM|ADDTO) \(([^)]*)\)`).FindAllStringSubmatch(line, -1) {
		f := strings.Fields(m[2])
		if len(f)%2 != 0 {
			t.Fatalf("odd %s payload in %q", m[1], line)
		}
		for i := 0; i < len(f); i += 2 {
			pos, err := strconv.Atoi(f[i])
			if err != nil || pos < 1 {
				t.Fatalf("position %q in %q (a SORT context has positions from 1)", f[i], line)
			}
			set := parseOrderedSet(t, f[i+1])
			if m[1] == "ADDTO" {
				if pos-1 > len(list) {
					t.Fatalf("ADDTO at %d of a %d-result list: %q", pos, len(list), line)
				}
				list = slices.Insert(list, pos-1, set...)
				continue
			}
			if pos-1+len(set) > len(list) || !slices.Equal(list[pos-1:pos-1+len(set)], set) {
				t.Fatalf("REMOVEFROM (%d %v) but the list is %v: %q", pos, set, list, line)
			}
			list = slices.Delete(list, pos-1, pos-1+len(set))
		}
	}
	return list
}

// applyRuns is applyContextUpdate for sortedUpdateDiff's output.
func applyRuns(t *testing.T, list []uint32, removed, added []posRun) []uint32 {
	t.Helper()
	for _, r := range removed {
		p := int(r.pos) - 1
		if p < 0 || p+len(r.uids) > len(list) || !slices.Equal(list[p:p+len(r.uids)], r.uids) {
			t.Fatalf("REMOVEFROM (%d %v) on %v", r.pos, r.uids, list)
		}
		list = slices.Delete(list, p, p+len(r.uids))
	}
	for _, r := range added {
		p := int(r.pos) - 1
		if p < 0 || p > len(list) {
			t.Fatalf("ADDTO (%d %v) on %v", r.pos, r.uids, list)
		}
		list = slices.Insert(list, p, r.uids...)
	}
	return list
}

// TestSortedUpdateDiff: the positions of RFC 5267 §4.3.3/§4.3.4, with
// the RFC's own example (2734:2735 becomes 2731:2735 by "ADDTO (1
// 2731:2733)", the preferred form), and for random changes of random
// sorted results a client applying the pairs ends with the new result.
func TestSortedUpdateDiff(t *testing.T) {
	rm, add := sortedUpdateDiff([]uint32{2734, 2735}, []uint32{2731, 2732, 2733, 2734, 2735})
	if len(rm) != 0 || len(add) != 1 || add[0].pos != 1 || orderedSet(add[0].uids) != "2731:2733" {
		t.Errorf("RFC 5267 §4.3.3 example: REMOVEFROM %v ADDTO %v, want ADDTO (1 2731:2733)", rm, add)
	}
	for _, tc := range []struct {
		old, cur []uint32
		want     string
	}{
		{[]uint32{5, 3, 9, 1}, []uint32{5, 9}, "R(2 3) R(3 1)"},
		{[]uint32{5, 3, 9, 1}, []uint32{5, 3, 9, 1}, ""},
		{[]uint32{5, 3, 9, 1}, []uint32{7, 5, 3, 8, 6, 9, 1, 2}, "A(1 7) A(4 8,6) A(8 2)"},
		{[]uint32{5, 3, 9, 1}, []uint32{4, 3, 1, 2}, "R(1 5) R(2 9) A(1 4) A(4 2)"},
		{[]uint32{1, 2}, []uint32{2, 1}, "R(1 1:2) A(1 2,1)"}, // order changed: all again
		{nil, []uint32{3, 1, 2}, "A(1 3,1:2)"},
	} {
		rm, add := sortedUpdateDiff(tc.old, tc.cur)
		var got []string
		for _, r := range rm {
			got = append(got, fmt.Sprintf("R(%d %s)", r.pos, orderedSet(r.uids)))
		}
		for _, r := range add {
			got = append(got, fmt.Sprintf("A(%d %s)", r.pos, orderedSet(r.uids)))
		}
		if g := strings.Join(got, " "); g != tc.want {
			t.Errorf("%v -> %v: %s, want %s", tc.old, tc.cur, g, tc.want)
		}
		if res := applyRuns(t, slices.Clone(tc.old), rm, add); !slices.Equal(res, tc.cur) {
			t.Errorf("%v -> %v: a client ends with %v", tc.old, tc.cur, res)
		}
	}
	rng := rand.New(rand.NewPCG(5, 7))
	for round := 0; round < 500; round++ {
		// A random order of UIDs 1..n; old and cur are random subsets.
		n := 1 + rng.IntN(40)
		perm := rng.Perm(n)
		var old, cur []uint32
		for _, p := range perm {
			if rng.IntN(3) > 0 {
				old = append(old, uint32(p+1))
			}
			if rng.IntN(3) > 0 {
				cur = append(cur, uint32(p+1))
			}
		}
		rm, add := sortedUpdateDiff(old, cur)
		if res := applyRuns(t, slices.Clone(old), rm, add); !slices.Equal(res, cur) {
			t.Fatalf("%v -> %v: a client ends with %v", old, cur, res)
		}
	}
}

// TestSortUpdate: CONTEXT=SORT (RFC 5267 §4.3) on raw sessions. Debian's
// dovecot 2.3.19 has no CONTEXT=SORT (its CAPABILITY lacks it and it
// answers a UID SORT's UPDATE with SEARCH's position 0), so the RFC is
// the judge: the exact ESEARCH responses its rules give (the §4.3.3
// example's "ADDTO (1 1:3)" turning 4:5 into 1:5, REMOVEFROM at the
// result's position before the EXPUNGE as in §4.3.4, several pairs in one
// response), and a client that keeps the first answer and applies every
// update holds what a fresh UID SORT answers, after each change.
func TestSortUpdate(t *testing.T) {
	ts := startServer(t)
	a, b := dialRaw(t, ts.addr), dialRaw(t, ts.addr)
	for _, rc := range []*rawConn{a, b} {
		rc.send("l LOGIN alice pw-alice\r\n")
		rc.until("l ")
	}
	a.send("c CAPABILITY\r\n")
	if l := strings.Join(a.until("c "), "\n"); !strings.Contains(l, " CONTEXT=SORT") || !strings.Contains(l, " CONTEXT=SEARCH") || !strings.Contains(l, " ESORT") {
		t.Errorf("capabilities: %q", l)
	}
	app := func(hour, minute int, flags string) {
		msg := fmt.Sprintf("Subject: m\r\nDate: Wed, 07 Oct 2009 %02d:%02d:00 +0000\r\n\r\nx\r\n", hour, minute)
		b.send("p APPEND INBOX " + flags + " {" + itoa(len(msg)) + "+}\r\n" + msg + "\r\n")
		if l := b.until("p "); !strings.HasPrefix(l[len(l)-1], "p OK") {
			t.Fatalf("APPEND: %q", l)
		}
	}
	// UIDs 1-6 at 10:00, 11:00, 12:00, 14:00, 15:00, 13:00; 4 and 5 flagged.
	for i, h := range []int{10, 11, 12, 14, 15, 13} {
		flags := "()"
		if i == 3 || i == 4 {
			flags = `(\Flagged)`
		}
		app(h, 0, flags)
	}
	for _, rc := range []*rawConn{a, b} {
		rc.send("s SELECT INBOX\r\n")
		rc.until("s OK")
	}
	cmd := func(rc *rawConn, tag, c string) []string {
		t.Helper()
		rc.send(tag + " " + c + "\r\n")
		return rc.until(tag + " ")
	}
	esearch := func(lines []string, tag string) []string {
		var out []string
		for _, l := range lines {
			if strings.HasPrefix(l, `* ESEARCH (TAG "`+tag+`")`) {
				out = append(out, l)
			}
		}
		return out
	}
	// The two contexts: by date, and by reverse date with COUNT (UPDATE
	// does not interact with other return options, §4.3).
	lists := map[string][]uint32{}
	criteria := map[string]string{"U1": "(DATE)", "U2": "(REVERSE DATE)"}
	for _, tag := range []string{"U1", "U2"} {
		got := cmd(a, tag, "UID SORT RETURN (UPDATE ALL COUNT) "+criteria[tag]+" UTF-8 FLAGGED")
		if l := got[len(got)-1]; !strings.HasPrefix(l, tag+" OK") || strings.Contains(l, "NOUPDATE") {
			t.Fatalf("%s: %q", tag, got)
		}
		m := regexp.MustCompile(` ALL (\S+)`).FindStringSubmatch(strings.Join(esearch(got, tag), ""))
		if m == nil {
			t.Fatalf("%s: no ALL in %q", tag, got)
		}
		lists[tag] = parseOrderedSet(t, m[1])
	}
	if !slices.Equal(lists["U1"], []uint32{4, 5}) || !slices.Equal(lists["U2"], []uint32{5, 4}) {
		t.Fatalf("first answers %v", lists)
	}
	// check applies a's updates to the lists and compares them with a
	// fresh sort; want are U1's ESEARCH lines, in order.
	step := 0
	check := func(lines []string, want ...string) {
		t.Helper()
		step++
		if got := esearch(lines, "U1"); !slices.Equal(got, want) {
			t.Errorf("step %d: U1 updates %q, want %q (all: %q)", step, got, want, lines)
		}
		for _, tag := range []string{"U1", "U2"} {
			for _, l := range esearch(lines, tag) {
				lists[tag] = applyContextUpdate(t, lists[tag], l)
			}
			fresh := cmd(a, "f", "UID SORT "+criteria[tag]+" UTF-8 FLAGGED")
			var want []uint32
			for _, f := range strings.Fields(strings.TrimPrefix(fresh[0], "* SORT"))[0:] {
				n, _ := strconv.Atoi(f)
				want = append(want, uint32(n))
			}
			if !slices.Equal(lists[tag], want) {
				t.Errorf("step %d: %s kept by the updates is %v, a fresh sort %v", step, tag, lists[tag], want)
			}
		}
	}
	// §4.3.3's example: results 4:5, three earlier ones join.
	cmd(b, "f", `UID STORE 1:3 +FLAGS.SILENT (\Flagged)`)
	check(cmd(a, "n", "NOOP"), `* ESEARCH (TAG "U1") UID ADDTO (1 1:3)`)
	// One leaves from the middle.
	cmd(b, "f", `UID STORE 2 -FLAGS.SILENT (\Flagged)`)
	check(cmd(a, "n", "NOOP"), `* ESEARCH (TAG "U1") UID REMOVEFROM (2 2)`)
	// A new message sorts in between; after its EXISTS (§4.3.3).
	app(13, 30, `(\Flagged)`)
	got := cmd(a, "n", "NOOP")
	check(got, `* ESEARCH (TAG "U1") UID ADDTO (3 7)`)
	if i, j := slices.Index(got, "* 7 EXISTS"), slices.Index(got, `* ESEARCH (TAG "U1") UID ADDTO (3 7)`); i < 0 || j < i {
		t.Errorf("ADDTO not after EXISTS: %q", got)
	}
	// An expunged result: REMOVEFROM at its position, before the EXPUNGE (§4.3.4).
	cmd(b, "f", `UID STORE 4 +FLAGS.SILENT (\Deleted)`)
	cmd(b, "e", "EXPUNGE")
	got = cmd(a, "n", "NOOP")
	check(got, `* ESEARCH (TAG "U1") UID REMOVEFROM (4 4)`)
	if i, j := slices.Index(got, `* ESEARCH (TAG "U1") UID REMOVEFROM (4 4)`), slices.Index(got, "* 4 EXPUNGE"); i < 0 || j < i {
		t.Errorf("REMOVEFROM not before EXPUNGE: %q", got)
	}
	// Several pairs in one response, applied in order.
	cmd(b, "f", `UID STORE 1 -FLAGS.SILENT (\Flagged)`)
	cmd(b, "f", `UID STORE 2,6 +FLAGS.SILENT (\Flagged)`)
	check(cmd(a, "n", "NOOP"), `* ESEARCH (TAG "U1") UID REMOVEFROM (1 1) ADDTO (1 2 3 6)`)
	// The session's own changes, and during IDLE.
	check(cmd(a, "f", `UID STORE 1 +FLAGS.SILENT (\Flagged)`), `* ESEARCH (TAG "U1") UID ADDTO (1 1)`)
	a.send("i IDLE\r\n")
	a.until("+ ")
	app(9, 0, `(\Flagged)`)
	idle := a.until(`* ESEARCH (TAG "U1")`)
	idle = append(idle, a.until(`* ESEARCH (TAG "U2")`)...)
	a.send("DONE\r\n")
	check(append(idle, a.until("i ")...), `* ESEARCH (TAG "U1") UID ADDTO (1 8)`)

	// Refusals and errors.
	if l := cmd(a, "U3", "SORT RETURN (UPDATE) (DATE) UTF-8 ALL"); !strings.HasPrefix(l[len(l)-1], `U3 OK [NOUPDATE "U3"]`) {
		t.Errorf("sequence-number SORT UPDATE: %q, want NOUPDATE", l)
	}
	if l := cmd(a, "U1", "UID SORT RETURN (UPDATE) (DATE) UTF-8 ALL"); !strings.HasPrefix(l[len(l)-1], "U1 BAD") {
		t.Errorf("UPDATE with an active tag: %q, want BAD (§4.3)", l)
	}
	if l := cmd(a, "x", `CANCELUPDATE "U1" "U2"`); !strings.HasPrefix(l[len(l)-1], "x OK") {
		t.Errorf("CANCELUPDATE: %q", l)
	}
	app(8, 0, `(\Flagged)`)
	if l := cmd(a, "n", "NOOP"); len(esearch(l, "U1"))+len(esearch(l, "U2")) != 0 {
		t.Errorf("updates after CANCELUPDATE: %q", l)
	}
}

// TestUpdateTagDovecot: a searching command with UPDATE and the tag of an
// active UPDATE context is BAD (RFC 5267 §4.3), for SEARCH and SORT
// alike, and the tag is free again after CANCELUPDATE: the same script
// against mailmig and dovecot, statuses and ESEARCH responses equal.
func TestUpdateTagDovecot(t *testing.T) {
	msg := "Subject: x\r\n\r\nx\r\n"
	app := "APPEND INBOX {" + itoa(len(msg)) + "+}\r\n" + msg
	script := [][2]string{
		{"a", app}, {"b", app}, {"s", "SELECT INBOX"},
		{"c", "UID SEARCH RETURN (UPDATE) ALL"},
		{"c", "UID SORT RETURN (UPDATE) (DATE) UTF-8 ALL"},
		{"c", "UID SEARCH RETURN (UPDATE) ALL"},
		{"d", "UID SORT RETURN (UPDATE ALL) (DATE) UTF-8 ALL"},
		{"d", "UID SEARCH RETURN (UPDATE) ALL"},
		{"d", "UID SORT RETURN (UPDATE) (DATE) UTF-8 ALL"},
		{"x", `CANCELUPDATE "c" "d"`},
		{"c", "UID SORT RETURN (UPDATE COUNT) (DATE) UTF-8 ALL"},
		{"y", `CANCELUPDATE "c"`},
	}
	run := func(lc *lineConn) []string {
		var out []string
		for i, s := range script {
			r := lc.do(s[0], s[1])
			if i < 2 {
				continue // APPENDUID names the UIDVALIDITY
			}
			for _, l := range r {
				if !strings.HasPrefix(l, "* ") || strings.HasPrefix(l, "* ESEARCH") {
					out = append(out, s[0]+": "+l)
				}
			}
		}
		return out
	}
	ts := startServer(t)
	rc := dialRaw(t, ts.addr)
	ours := &lineConn{t: t, w: rc.nc, r: rc.r}
	ours.do("l", "LOGIN alice pw-alice")
	d, _ := dovecotPair(t)
	a, b := run(ours), run(d)
	if !slices.Equal(a, b) {
		t.Errorf("mailmig:\n%s\ndovecot:\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
	if !slices.Contains(a, "c: BAD") {
		t.Errorf("no BAD for the reused tag: %q", a)
	}
}
