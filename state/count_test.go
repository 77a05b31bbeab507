package state

import (
	"context"
	"path/filepath"
	"testing"
)

func TestCountEvents(t *testing.T) {
	d, err := Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	if n, err := d.CountEvents(ctx, "step-failed"); err != nil || n != 0 {
		t.Fatalf("empty log: %d %v", n, err)
	}
	for _, k := range []string{"step-failed", "mail-sent", "step-failed"} {
		if err := d.Log(ctx, "alice", k, "test", "x"); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := d.CountEvents(ctx, "step-failed"); err != nil || n != 2 {
		t.Fatalf("CountEvents = %d, %v; want 2", n, err)
	}
}

// TestCounters: counters add up across calls (and processes: one row
// each), by labels.
func TestCounters(t *testing.T) {
	d, err := Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	for _, l := range []string{"deliver/delivered", "deliver/rejected", "deliver/delivered"} {
		if err := d.AddCounter(ctx, "deliveries", l, 1); err != nil {
			t.Fatal(err)
		}
	}
	d.AddCounter(ctx, "other", "x", 7)
	got, err := d.Counters(ctx, "deliveries")
	if err != nil || len(got) != 2 || got["deliver/delivered"] != 2 || got["deliver/rejected"] != 1 {
		t.Fatalf("Counters = %v, %v", got, err)
	}
	if got, _ := d.Counters(ctx, "none"); len(got) != 0 {
		t.Fatalf("unknown counter: %v", got)
	}
}
