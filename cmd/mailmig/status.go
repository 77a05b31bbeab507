package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"mailmig/migrate"
	"mailmig/state"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show the migration queue",
		ArgsUsage: "[USER]",
		Description: `Without USER: one line per user (state, since when, folders, bytes, last
error) and a summary (users per state, bytes moved, throughput, estimated
time left). With USER: that user's details and step times.

Examples:
   mailmig status
   mailmig status alice
   mailmig status --json | jq '.users[] | select(.state == "needs-attention")'`,
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "machine-readable output"}},
		Action: func(c *cli.Context) error {
			e, err := loadBase(c)
			if err != nil {
				return err
			}
			defer e.Close()
			if c.NArg() > 1 {
				return fmt.Errorf("status: at most one USER")
			}
			if u := c.Args().First(); u != "" {
				ent, err := e.db.Get(c.Context, u)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return writeJSON(c.App.Writer, entryJSON(ent))
				}
				printEntry(c.App.Writer, ent, e.db.Now())
				return nil
			}
			entries, err := e.db.List(c.Context)
			if err != nil {
				return err
			}
			sum, err := e.db.Summarize(c.Context)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				out := struct {
					Users   []statusEntry `json:"users"`
					Summary statusSummary `json:"summary"`
				}{Summary: summaryJSON(sum)}
				for _, ent := range entries {
					out.Users = append(out.Users, entryJSON(ent))
				}
				if out.Users == nil {
					out.Users = []statusEntry{}
				}
				return writeJSON(c.App.Writer, out)
			}
			printTable(c.App.Writer, entries, e.db.Now())
			printSummary(c.App.Writer, sum)
			return nil
		},
	}
}

type statusEntry struct {
	User          string               `json:"user"`
	State         string               `json:"state"`
	Since         time.Time            `json:"since"`
	CopyFolders   bool                 `json:"copy_folders"`
	Deadline      *time.Time           `json:"deadline,omitempty"`
	Forced        bool                 `json:"forced"`
	Folders       int64                `json:"folders"`
	Messages      int64                `json:"messages"`
	Bytes         int64                `json:"bytes"`
	Attempts      int                  `json:"attempts"`
	LastError     string               `json:"last_error,omitempty"`
	AttentionFrom string               `json:"attention_from,omitempty"`
	StopRequested bool                 `json:"stop_requested"`
	LeaseOwner    string               `json:"lease_owner,omitempty"`
	Steps         map[string]time.Time `json:"steps,omitempty"`
	// Filters: the converted procmail/.forward/vacation (docs/filters.md).
	Filters *migrate.FiltersReport `json:"filters,omitempty"`
}

func entryJSON(e *state.Entry) statusEntry {
	s := statusEntry{
		User: e.User, State: string(e.State), Since: e.StateSince, CopyFolders: e.CopyFolders, Forced: e.Forced(),
		Folders: e.Folders, Messages: e.Messages, Bytes: e.Bytes, Attempts: e.Attempts, LastError: e.LastError,
		AttentionFrom: string(e.AttentionFrom), StopRequested: e.StopRequested, LeaseOwner: e.LeaseOwner,
	}
	if !e.Deadline.IsZero() {
		d := e.Deadline
		s.Deadline = &d
	}
	if rep, err := migrate.ParseReport(e.Report); err == nil {
		s.Filters = rep.Filters
	}
	if len(e.Steps) > 0 {
		s.Steps = map[string]time.Time{}
		for k, v := range e.Steps {
			s.Steps[string(k)] = v
		}
	}
	return s
}

type statusSummary struct {
	Total         int            `json:"total"`
	Users         map[string]int `json:"users"`
	Bytes         int64          `json:"bytes"`
	Messages      int64          `json:"messages"`
	BytesPerSec   float64        `json:"bytes_per_second"`
	PendingUsers  int            `json:"pending_users"`
	EstimatedLeft string         `json:"estimated_left,omitempty"`
}

func summaryJSON(s *state.Summary) statusSummary {
	out := statusSummary{Total: s.Total, Users: map[string]int{}, Bytes: s.Bytes, Messages: s.Messages, PendingUsers: s.PendingUsers}
	for k, v := range s.Users {
		out.Users[string(k)] = v
	}
	if s.DoneSeconds > 0 {
		out.BytesPerSec = float64(s.DoneBytes) / s.DoneSeconds
	}
	if eta, ok := estimate(s); ok {
		out.EstimatedLeft = eta.String()
	}
	return out
}

// estimate guesses the copy time left: pending users times the average
// size of the users copied so far, at the measured throughput. There is
// no estimate without pending users or without a basis (a finished copy
// that took measurable time); with pending users it is never below 1s.
func estimate(s *state.Summary) (time.Duration, bool) {
	copied := 0
	for _, st := range []state.State{state.Confirm, state.Cutover, state.Done} {
		copied += s.Users[st]
	}
	if s.PendingUsers == 0 || copied == 0 || s.DoneSeconds < 0.001 || s.DoneBytes == 0 {
		return 0, false
	}
	avg := float64(s.DoneBytes) / float64(copied)
	rate := float64(s.DoneBytes) / s.DoneSeconds
	eta := time.Duration(float64(s.PendingUsers) * avg / rate * float64(time.Second)).Round(time.Second)
	return max(eta, time.Second), true
}

// etaText is the estimate as the summary prints it.
func etaText(d time.Duration) string {
	if d < time.Minute {
		return "less than a minute"
	}
	return "about " + d.Round(time.Minute).String()
}

func printTable(w io.Writer, entries []*state.Entry, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tSTATE\tSINCE\tFOLDERS\tMESSAGES\tBYTES\tLAST ERROR")
	for _, e := range entries {
		st := string(e.State)
		if e.StopRequested && e.State != state.Done {
			st += " (stop asked)"
		}
		size := humanBytes(e.Bytes)
		if e.State == state.Copying {
			// Figures so far (the runner records them as it copies).
			size = "copying"
			if e.Bytes > 0 {
				size = humanBytes(e.Bytes) + " so far"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", e.User, st, ago(now, e.StateSince), e.Folders, e.Messages, size, oneLine(e.LastError, 60))
	}
	tw.Flush()
}

func printSummary(w io.Writer, s *state.Summary) {
	var parts []string
	for _, st := range state.States {
		if n := s.Users[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	if s.Total == 0 {
		fmt.Fprintln(w, "\nThe queue is empty. Add users with: mailmig enqueue USER...")
		return
	}
	fmt.Fprintf(w, "\n%d users: %s\n", s.Total, strings.Join(parts, ", "))
	fmt.Fprintf(w, "moved: %s in %d messages", humanBytes(s.Bytes), s.Messages)
	if s.DoneSeconds > 0 {
		fmt.Fprintf(w, "; copy throughput %s/s", humanBytes(int64(float64(s.DoneBytes)/s.DoneSeconds)))
	}
	if eta, ok := estimate(s); ok {
		fmt.Fprintf(w, "; %s left for %d users", etaText(eta), s.PendingUsers)
	} else if s.PendingUsers > 0 {
		fmt.Fprintf(w, "; %d users still to copy (no estimate yet)", s.PendingUsers)
	}
	fmt.Fprintln(w)
}

func printEntry(w io.Writer, e *state.Entry, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "user:\t%s\n", e.User)
	fmt.Fprintf(tw, "state:\t%s (since %s, %s)\n", e.State, e.StateSince.Local().Format(time.DateTime), ago(now, e.StateSince))
	kind := "voluntary"
	if e.Forced() {
		kind = "forced (enqueued after the deadline)"
	}
	fmt.Fprintf(tw, "move:\t%s\n", kind)
	fmt.Fprintf(tw, "copy folders:\t%v\n", e.CopyFolders)
	if !e.Deadline.IsZero() {
		fmt.Fprintf(tw, "deadline:\t%s\n", e.Deadline.Format("2006-01-02"))
	}
	fmt.Fprintf(tw, "copied:\t%d folders, %d messages, %s\n", e.Folders, e.Messages, humanBytes(e.Bytes))
	if e.StopRequested {
		fmt.Fprintf(tw, "stop asked:\t%s\n", e.StopReason)
	}
	if e.LastError != "" {
		fmt.Fprintf(tw, "last error:\t%s (attempts %d)\n", e.LastError, e.Attempts)
	}
	printFilters(tw, e)
	if e.LeaseOwner != "" && e.LeaseUntil.After(now) {
		fmt.Fprintf(tw, "worked on by:\t%s until %s\n", e.LeaseOwner, e.LeaseUntil.Local().Format(time.TimeOnly))
	}
	for _, st := range state.States {
		if t, ok := e.Steps[st]; ok {
			fmt.Fprintf(tw, "  %s:\t%s\n", st, t.Local().Format(time.DateTime))
		}
	}
	tw.Flush()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm ago", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

func humanBytes(n int64) string {
	const k = 1024
	switch {
	case n >= k*k*k:
		return fmt.Sprintf("%.1f GB", float64(n)/(k*k*k))
	case n >= k*k:
		return fmt.Sprintf("%.1f MB", float64(n)/(k*k))
	case n >= k:
		return fmt.Sprintf("%.1f KB", float64(n)/k)
	}
	return fmt.Sprintf("%d B", n)
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		return s[:max-1] + "…"
	}
	return s
}

// printFilters shows the filter conversion of the copy (docs/filters.md).
func printFilters(w io.Writer, e *state.Entry) {
	rep, err := migrate.ParseReport(e.Report)
	if err != nil || rep.Filters == nil || rep.Filters.Script == "" {
		return
	}
	f := rep.Filters
	act := "active"
	if !f.Activated {
		act = "NOT active: " + f.NotActivated
	}
	fmt.Fprintf(w, "filters:\t%s from %s (%s)\n", f.Script, strings.Join(f.Sources, ", "), act)
	for _, p := range f.Problems {
		fmt.Fprintf(w, "  not converted:\t%s\n", p)
	}
}
