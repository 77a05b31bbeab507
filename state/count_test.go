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
