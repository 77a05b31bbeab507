package imap

import (
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// RFC 5465 NOTIFY: the request grammar (§8) and its checks (§5, §6);
// delivery is in notify_session.go (see docs/imap.md).

// notifyFilter is one event-group's mailbox filter (RFC 5465 §6).
type notifyFilter struct {
	kind      string   // selected, selected-delayed, inboxes, personal, subscribed, subtree, mailboxes
	mailboxes []string // for subtree and mailboxes
}

// notifyEvents is the set of events of one event-group (RFC 5465 §5).
type notifyEvents struct {
	none      bool // "NONE": no events for these mailboxes
	names     []string
	fetchAtts []fetchItem // MessageNew's fetch-att (selected only)
}

func (e notifyEvents) has(name string) bool {
	for _, n := range e.names {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// notifyGroup is one event-group.
type notifyGroup struct {
	filter notifyFilter
	events notifyEvents
}

// notifyRequest is a parsed NOTIFY command: none for NOTIFY NONE.
type notifyRequest struct {
	none   bool
	status bool
	groups []notifyGroup
}

// notifySupported lists the events this server can deliver, in the
// order they are named in a BADEVENT response code (RFC 5465 §5.9).
// AnnotationChange (no ANNOTATE here) and the METADATA events are
// refused with BADEVENT.
var notifySupported = []string{"MessageNew", "MessageExpunge", "FlagChange", "MailboxName", "SubscriptionChange"}

// knownNotifyEvents are the events RFC 5465 §5 and RFC 5464 define.
var knownNotifyEvents = append([]string{"AnnotationChange", "MailboxMetadataChange", "ServerMetadataChange"}, notifySupported...)

// parseNotify parses the arguments of NOTIFY after the command name
// (RFC 5465 §8): "NONE" or "SET" [SP "STATUS"] SP event-group *(SP event-group).
// Grammar errors are BAD; events the server does not offer are
// NO [BADEVENT (...)] (RFC 5465 §5.9).
func parseNotify(p *parser) (*notifyRequest, error) {
	if err := p.sp(); err != nil {
		return nil, err
	}
	verb, err := p.atom()
	if err != nil {
		return nil, err
	}
	req := &notifyRequest{}
	switch strings.ToUpper(verb) {
	case "NONE":
		req.none = true
		return req, p.end()
	case "SET":
	default:
		return nil, p.errorf("expected SET or NONE")
	}
	if err := p.sp(); err != nil {
		return nil, err
	}
	if p.peek() != '(' {
		w, err := p.atom()
		if err != nil {
			return nil, err
		}
		if !strings.EqualFold(w, "STATUS") {
			return nil, p.errorf("expected STATUS or event group")
		}
		req.status = true
		if err := p.sp(); err != nil {
			return nil, err
		}
	}
	var unsupported bool
	seen := map[string]bool{}
	for {
		g, bad, err := parseNotifyGroup(p)
		if err != nil {
			return nil, err
		}
		unsupported = unsupported || bad
		// A filter may appear only once; selected and selected-delayed
		// exclude each other (RFC 5465 §6).
		key := g.filter.kind
		if key == "selected-delayed" {
			key = "selected"
		}
		if key == "selected" || key == "inboxes" || key == "personal" || key == "subscribed" {
			if seen[key] {
				return nil, p.errorf("mailbox filter %s given twice", g.filter.kind)
			}
			seen[key] = true
		}
		req.groups = append(req.groups, g)
		if p.eol() {
			break
		}
		if err := p.sp(); err != nil {
			return nil, err
		}
	}
	if unsupported {
		return nil, errNo(imap.ResponseCode("BADEVENT ("+strings.Join(notifySupported, " ")+")"), "unsupported event")
	}
	// RFC 5465 §3.1 lets a server refuse a request too expensive to
	// serve with NO [NOTIFICATIONOVERFLOW]; dovecot refuses more than
	// notifyMaxNames names for one filter type and event set.
	names := map[string]map[string]bool{}
	for _, g := range req.groups {
		if g.events.none || len(g.filter.mailboxes) == 0 {
			continue
		}
		ev := slices.Clone(g.events.names)
		for i := range ev {
			ev[i] = strings.ToLower(ev[i])
		}
		slices.Sort(ev)
		key := g.filter.kind + " " + strings.Join(slices.Compact(ev), " ")
		if names[key] == nil {
			names[key] = map[string]bool{}
		}
		for _, m := range g.filter.mailboxes {
			names[key][m] = true
		}
		if len(names[key]) > notifyMaxNames {
			return nil, errNo(imap.ResponseCode("NOTIFICATIONOVERFLOW"), "too many mailbox names")
		}
	}
	return req, nil
}

// notifyMaxNames is how many mailbox names one filter type may list, as
// in dovecot (IMAP_NOTIFY_MAX_NAMES_PER_NS).
const notifyMaxNames = 100

// parseNotifyGroup parses "(" filter-mailboxes SP events ")"; bad
// reports a known-but-unsupported or unknown event.
func parseNotifyGroup(p *parser) (g notifyGroup, bad bool, err error) {
	if err = p.expect('('); err != nil {
		return
	}
	kind, err := p.atom()
	if err != nil {
		return
	}
	g.filter.kind = strings.ToLower(kind)
	switch g.filter.kind {
	case "selected", "selected-delayed", "inboxes", "personal", "subscribed":
	case "subtree", "mailboxes":
		if err = p.sp(); err != nil {
			return
		}
		if p.take('(') {
			for {
				var mb string
				if mb, err = p.mailbox(); err != nil {
					return
				}
				g.filter.mailboxes = append(g.filter.mailboxes, mb)
				if p.take(')') {
					break
				}
				if err = p.sp(); err != nil {
					return
				}
			}
		} else {
			var mb string
			if mb, err = p.mailbox(); err != nil {
				return
			}
			g.filter.mailboxes = []string{mb}
		}
	default:
		err = p.errorf("unknown mailbox filter %q", kind)
		return
	}
	if err = p.sp(); err != nil {
		return
	}
	selected := strings.HasPrefix(g.filter.kind, "selected")
	if p.peek() != '(' {
		var w string
		if w, err = p.atom(); err != nil {
			return
		}
		if !strings.EqualFold(w, "NONE") {
			err = p.errorf("expected event list or NONE")
			return
		}
		g.events.none = true
	} else {
		p.take('(')
		for {
			var name string
			if name, err = p.atom(); err != nil {
				return
			}
			if strings.EqualFold(name, "MessageNew") && p.peek() == ' ' && p.pos+1 < len(p.line) && p.line[p.pos+1] == '(' {
				if !selected {
					// fetch-att only makes sense where there are
					// sequence numbers (RFC 5465 §5.2).
					err = p.errorf("MessageNew with fetch attributes is only for the selected mailbox")
					return
				}
				p.sp()
				if g.events.fetchAtts, err = parseFetchItems(p); err != nil {
					return
				}
			}
			if !foldIn(knownNotifyEvents, name) {
				// An event no RFC defines is a syntax error (dovecot).
				err = p.errorf("unknown event %q", name)
				return
			}
			if !foldIn(notifySupported, name) {
				bad = true
			}
			g.events.names = append(g.events.names, name)
			if p.take(')') {
				break
			}
			if err = p.sp(); err != nil {
				return
			}
		}
	}
	if err = p.expect(')'); err != nil {
		return
	}
	// RFC 5465 §5: MessageNew and MessageExpunge go together, and
	// FlagChange needs both.
	e := g.events
	if e.has("MessageNew") != e.has("MessageExpunge") {
		err = p.errorf("MessageNew and MessageExpunge must be requested together")
		return
	}
	if (e.has("FlagChange") || e.has("AnnotationChange")) && !e.has("MessageNew") {
		err = p.errorf("FlagChange and AnnotationChange need MessageNew and MessageExpunge")
		return
	}
	// Mailbox and user events are not per selected mailbox (§6).
	if selected && (e.has("MailboxName") || e.has("SubscriptionChange") || e.has("MailboxMetadataChange") || e.has("ServerMetadataChange")) {
		err = p.errorf("mailbox events cannot be requested for the selected mailbox")
		return
	}
	return
}

func foldIn(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
