package imap

import (
	"slices"
	"testing"
	"time"
)

func TestEvictLeastUsed(t *testing.T) {
	type entry struct {
		n    int
		used time.Time
	}
	t0 := time.Unix(1e9, 0)
	for _, tc := range []struct {
		name string
		max  int
		want []string
	}{
		{"under the bound", 100, []string{"a", "b", "c"}},
		{"at the bound", 60, []string{"a", "b", "c"}},
		{"oldest goes first", 50, []string{"a", "c"}},
		{"until it fits", 30, []string{"c"}},
		{"all", 0, nil},
	} {
		m := map[string]entry{"a": {10, t0.Add(2)}, "b": {20, t0}, "c": {30, t0.Add(5)}}
		evictLeastUsed(m, tc.max, func(e entry) int { return e.n }, func(e entry) time.Time { return e.used })
		var got []string
		for k := range m {
			got = append(got, k)
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: kept %v, want %v", tc.name, got, tc.want)
		}
	}
}
