package web

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"mailmig/state"
)

type stateCount struct {
	State state.State
	N     int
}

type adminData struct {
	Summary *state.Summary
	Counts  []stateCount
	Users   []*state.Entry
	Rate    string // MB/s of finished copies
	ETA     string
	Filter  string
}

// adminPage is the migration dashboard (`mailmig status` in a page).
func (s *Server) adminPage(w http.ResponseWriter, r *http.Request, sess *session) {
	ctx := r.Context()
	sum, err := s.opts.Migration.Summarize(ctx)
	if err != nil {
		s.fail(w, sess, err)
		return
	}
	list, err := s.opts.Migration.List(ctx)
	if err != nil {
		s.fail(w, sess, err)
		return
	}
	d := adminData{Summary: sum, Filter: r.URL.Query().Get("state")}
	for st, n := range sum.Users {
		d.Counts = append(d.Counts, stateCount{st, n})
	}
	slices.SortFunc(d.Counts, func(a, b stateCount) int { return strings.Compare(string(a.State), string(b.State)) })
	for _, e := range list {
		if d.Filter == "" || string(e.State) == d.Filter {
			d.Users = append(d.Users, e)
		}
	}
	// The page shows the first 1000 users of a state; the filter narrows.
	if len(d.Users) > 1000 {
		d.Users = d.Users[:1000]
	}
	if sum.DoneSeconds > 0 {
		rate := float64(sum.DoneBytes) / sum.DoneSeconds
		d.Rate = fmt.Sprintf("%.1f MB/s", rate/1e6)
	}
	d.ETA = etaText(sum)
	s.render(w, http.StatusOK, "admin.html", sess, page{Title: "Migration", Data: d})
}

// etaText estimates the copying left: pending users times the average
// size of the users past copying, at the measured rate. No estimate
// without a basis (a finished copy that took measurable time); never
// "0s" while users are pending (issue 9 item 8).
func etaText(sum *state.Summary) string {
	if sum.PendingUsers == 0 || sum.Total <= sum.PendingUsers || sum.DoneSeconds < 0.001 || sum.DoneBytes == 0 {
		return ""
	}
	rate := float64(sum.DoneBytes) / sum.DoneSeconds
	perUser := float64(sum.DoneBytes) / float64(sum.Total-sum.PendingUsers)
	eta := time.Duration(perUser * float64(sum.PendingUsers) / rate * float64(time.Second))
	if eta < time.Minute {
		return "less than a minute of copying left"
	}
	return "about " + eta.Round(time.Minute).String() + " of copying left"
}

type adminUserData struct {
	Entry  *state.Entry
	Events []state.Event
}

func (s *Server) adminUser(w http.ResponseWriter, r *http.Request, sess *session) {
	user := r.URL.Query().Get("u")
	e, err := s.opts.Migration.Get(r.Context(), user)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	evs, err := s.opts.Migration.Events(r.Context(), user)
	if err != nil {
		s.fail(w, sess, err)
		return
	}
	s.render(w, http.StatusOK, "adminuser.html", sess, page{Title: "Migration of " + user, Data: adminUserData{e, evs}})
}

// adminAction enqueues, stops or retries users: the operations of
// `mailmig enqueue`, `mailmig stop` and `mailmig retry`, through the same
// code, with the postmaster's login as the actor.
func (s *Server) adminAction(w http.ResponseWriter, r *http.Request, sess *session) {
	ctx := r.Context()
	actor := "web:" + sess.user
	do := r.PostFormValue("do")
	back := "/admin"
	var msgs []string
	switch do {
	case "enqueue":
		folders := r.PostFormValue("folders") == "on"
		for _, u := range strings.Fields(r.PostFormValue("users")) {
			added, err := s.opts.Migration.Enqueue(ctx, u, actor, folders)
			switch {
			case err != nil:
				msgs = append(msgs, fmt.Sprintf("%s: %v", u, err))
			case added:
				msgs = append(msgs, u+": queued")
			default:
				msgs = append(msgs, u+": already in the queue")
			}
		}
	case "stop", "retry":
		u := r.PostFormValue("u")
		back = "/admin/user?u=" + u
		var err error
		if do == "stop" {
			err = s.opts.Migration.Stop(ctx, u, actor)
		} else {
			var st state.State
			st, err = s.opts.Migration.Retry(ctx, u, actor)
			if err == nil {
				msgs = append(msgs, fmt.Sprintf("%s goes back to %s", u, st))
			}
		}
		if err != nil {
			msgs = append(msgs, fmt.Sprintf("%s: %v", u, err))
		} else if do == "stop" {
			msgs = append(msgs, u+": the old mailbox gets no more mail from the next run on")
		}
	default:
		http.Error(w, "unknown action", http.StatusBadRequest)
		return
	}
	s.log.Info("web: postmaster action", "actor", actor, "do", do, "result", strings.Join(msgs, "; "))
	s.redirect(w, r, sess, back, strings.Join(msgs, "; "))
}
