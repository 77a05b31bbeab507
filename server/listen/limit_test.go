package listen

import (
	"net"
	"testing"
)

func TestIPKey(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 1}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 1}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:aaaa::1"), Port: 1}, "2001:db8:1:2::/64"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:ffff::9"), Port: 1}, "2001:db8:1:2::/64"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:3::1"), Port: 1}, "2001:db8:1:3::/64"},
		{&net.UnixAddr{Name: "@", Net: "unix"}, ""},
	} {
		if got := IPKey(tc.addr); got != tc.want {
			t.Errorf("IPKey(%v) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

// TestCounter: the per-address limit counts an IPv6 /64 as one address,
// the total limit holds, and release frees the slot once.
func TestCounter(t *testing.T) {
	c := &Counter{Limits: Limits{Total: 3, PerIP: 2}}
	a1 := &net.TCPAddr{IP: net.ParseIP("2001:db8::1")}
	a2 := &net.TCPAddr{IP: net.ParseIP("2001:db8::2")}
	b := &net.TCPAddr{IP: net.ParseIP("192.0.2.1")}
	r1, ok1 := c.Acquire(a1)
	_, ok2 := c.Acquire(a2)
	_, ok3 := c.Acquire(a1)
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("per /64: %v %v %v, want true true false", ok1, ok2, ok3)
	}
	if _, ok := c.Acquire(b); !ok {
		t.Fatal("other address refused")
	}
	if _, ok := c.Acquire(&net.TCPAddr{IP: net.ParseIP("192.0.2.9")}); ok {
		t.Fatal("total limit not applied")
	}
	r1()
	r1()
	if c.Open() != 2 {
		t.Fatalf("open = %d after one release (twice), want 2", c.Open())
	}
	if _, ok := c.Acquire(a2); !ok {
		t.Fatal("freed slot not reusable")
	}
	u := &UserLimit{Max: 1}
	rel, ok := u.Acquire(UserIPKey("alice", b))
	if _, ok2 := u.Acquire(UserIPKey("alice", b)); !ok || ok2 {
		t.Fatal("user limit not applied")
	}
	if _, ok := u.Acquire(UserIPKey("bob", b)); !ok {
		t.Fatal("other user refused")
	}
	rel()
	if _, ok := u.Acquire(UserIPKey("alice", b)); !ok {
		t.Fatal("released user slot not reusable")
	}
}
