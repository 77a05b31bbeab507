package web

import (
	"testing"

	"mailmig/state"
)

// TestETAText: the dashboard's estimate needs a basis and never says
// "0s" while users are pending (issue 9 item 8).
func TestETAText(t *testing.T) {
	for _, c := range []struct {
		sum  state.Summary
		want string
	}{
		{state.Summary{Total: 2, PendingUsers: 2}, ""},
		{state.Summary{Total: 2, PendingUsers: 1, DoneBytes: 0, DoneSeconds: 3}, ""},
		{state.Summary{Total: 2, PendingUsers: 1, DoneBytes: 1 << 20, DoneSeconds: 0.0001}, ""},
		{state.Summary{Total: 2, PendingUsers: 0, DoneBytes: 1 << 20, DoneSeconds: 3}, ""},
		{state.Summary{Total: 2, PendingUsers: 1, DoneBytes: 1 << 20, DoneSeconds: 0.2}, "less than a minute of copying left"},
		{state.Summary{Total: 4, PendingUsers: 3, DoneBytes: 1 << 20, DoneSeconds: 100}, "about 5m0s of copying left"},
	} {
		if got := etaText(&c.sum); got != c.want {
			t.Errorf("etaText(%+v) = %q, want %q", c.sum, got, c.want)
		}
	}
}
