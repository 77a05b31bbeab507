package state

import (
	"context"
	"testing"
)

// TestFiguresDuringCopyAndCutover: a copy under way shows its figures so
// far, only while copying; the cutover pass adds to the copy's figures.
func TestFiguresDuringCopyAndCutover(t *testing.T) {
	d := openTest(t)
	ctx := context.Background()
	for _, u := range []string{"ann", "ben"} {
		if _, err := d.Enqueue(ctx, u, EnqueueOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	driveTo(t, d, "ann", Copying)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(d.CopyProgress(ctx, "ann", 5000, 7))
	must(d.CopyProgress(ctx, "ben", 5000, 7)) // queued: not copying, ignored
	s, err := d.Summarize(ctx)
	must(err)
	if s.Bytes != 5000 || s.Messages != 7 || s.PendingUsers != 2 {
		t.Fatalf("summary during the copy: %+v", s)
	}
	must(d.Progress(ctx, "ann", 9000, 10, 3, ""))
	must(d.Transition(ctx, "ann", Copying, Confirm, "test", ""))
	must(d.Transition(ctx, "ann", Confirm, Cutover, "test", ""))
	must(d.AddCarried(ctx, "ann", 100, 1, 1))
	must(d.AddCarried(ctx, "ann", 0, 0, 0)) // a repeated pass copies nothing
	e, err := d.Get(ctx, "ann")
	must(err)
	if e.Bytes != 9100 || e.Messages != 11 || e.Folders != 4 {
		t.Fatalf("after the cutover pass: %d bytes, %d messages, %d folders", e.Bytes, e.Messages, e.Folders)
	}
}
