package sessions

import (
	"io"
	"net"
	"testing"
	"time"
)

// TestListLoginKick: accepted connections are listed; LoggedIn finds a
// connection by its addresses (also through a wrapper such as tls.Conn,
// which keeps them); Kick closes only the user's; Close unlists.
func TestListLoginKick(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Listen("imap", raw)
	defer ln.Close()
	accepted := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	var clients, servers []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
		servers = append(servers, <-accepted)
	}
	if n := len(List(false)); n != 0 {
		t.Fatalf("%d logged-in sessions before any login", n)
	}
	if all := List(true); len(all) != 3 || all[0].Protocol != "imap" || all[0].Remote != clients[0].LocalAddr().String() {
		t.Fatalf("List(true) = %+v", all)
	}
	LoggedIn(struct{ net.Conn }{servers[0]}, "alice") // a wrapper with the same addresses
	LoggedIn(servers[1], "bob")
	LoggedIn(servers[2], "alice")
	if got := List(false); len(got) != 3 || got[0].User != "alice" || got[1].User != "bob" || got[0].LoginAt.IsZero() {
		t.Fatalf("List(false) = %+v", got)
	}
	if k := Kick("alice", "submission"); len(k) != 0 {
		t.Fatalf("kick of another protocol closed %+v", k)
	}
	if k := Kick("alice", ""); len(k) != 2 || k[0].User != "alice" || k[1].User != "alice" {
		t.Fatalf("Kick = %+v", k)
	}
	for i, c := range clients {
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		if kicked := i != 1; kicked != (err == io.EOF) {
			t.Errorf("client %d after kick: %v", i, err)
		}
	}
	servers[1].Close()
	if got := List(true); len(got) != 0 {
		t.Errorf("after close: %+v", got)
	}
	LoggedIn(servers[1], "bob") // a closed connection: nothing to find
	LoggedIn(nil, "x")
}
