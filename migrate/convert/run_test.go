package convert

import (
	"reflect"
	"testing"
)

func TestStartOrder(t *testing.T) {
	jobs := []*source{
		{rel: "INBOX", inbox: true, size: 1},
		{rel: "a", size: 10},
		{rel: "b", size: 30},
		{rel: "c", size: 10},
		{rel: "d", size: 20},
	}
	got := startOrder(jobs)
	want := []int{0, 2, 4, 1, 3} // INBOX, then largest first, ties in plan order
	if !reflect.DeepEqual(got, want) {
		t.Errorf("startOrder = %v, want %v", got, want)
	}
}
