package listen

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// timedPair returns a TimedConn accepted through TimeLimit and the client
// end of it.
func timedPair(t *testing.T, to Timeouts) (*TimedConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cl, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := TimeLimit(ln, to).Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); cl.Close() })
	return c.(*TimedConn), cl
}

// TestTimedConn: which bound ends a read, and when.
func TestTimedConn(t *testing.T) {
	const unit = 100 * time.Millisecond
	for _, tc := range []struct {
		name string
		// run drives the server side; it returns when the read failed.
		run     func(c *TimedConn, cl net.Conn) error
		why     string        // bound reported to Expired ("" = none)
		atLeast time.Duration // from the start of run
		atMost  time.Duration
	}{
		{"silent before auth: preauth", func(c *TimedConn, cl net.Conn) error {
			c.SetReadDeadline(time.Now().Add(time.Minute))
			_, err := c.Read(make([]byte, 10))
			return err
		}, "preauth", 3 * unit, 6 * unit},
		{"server deadline earlier than preauth", func(c *TimedConn, cl net.Conn) error {
			c.SetReadDeadline(time.Now().Add(unit))
			_, err := c.Read(make([]byte, 10))
			return err
		}, "", unit, 3 * unit},
		{"half a command: command bound", func(c *TimedConn, cl net.Conn) error {
			c.Authenticated()
			c.SetReadDeadline(time.Now().Add(time.Minute))
			cl.Write([]byte("NO"))
			b := make([]byte, 10)
			if _, err := c.Read(b); err != nil {
				return err
			}
			_, err := c.Read(b)
			return err
		}, "command", 2 * unit, 4 * unit},
		{"data is no command", func(c *TimedConn, cl net.Conn) error {
			c.Authenticated()
			c.SetReadDeadline(time.Now().Add(5 * unit))
			cl.Write([]byte("DATA\r\n"))
			b := make([]byte, 10)
			if _, err := c.Read(b); err != nil {
				return err
			}
			c.BeginData()
			cl.Write([]byte("half a li"))
			if _, err := c.Read(b); err != nil {
				return err
			}
			_, err := c.Read(b)
			return err
		}, "", 5 * unit, 7 * unit},
		{"data: the server's deadline is one of progress", func(c *TimedConn, cl net.Conn) error {
			c.Authenticated()
			c.SetReadDeadline(time.Now().Add(3 * unit))
			cl.Write([]byte("DATA\r\n"))
			b := make([]byte, 10)
			if _, err := c.Read(b); err != nil {
				return err
			}
			c.BeginData()
			// Four reads 2 units apart: 8 units in all, beyond the 3
			// the server set, each within it.
			for i := 0; i < 4; i++ {
				time.Sleep(2 * unit)
				cl.Write([]byte("line\r\n"))
				if _, err := c.Read(b); err != nil {
					return err
				}
			}
			_, err := c.Read(b)
			return err
		}, "", 11 * unit, 13 * unit},
		{"authenticated: only the server's deadline", func(c *TimedConn, cl net.Conn) error {
			c.Authenticated()
			c.SetReadDeadline(time.Now().Add(5 * unit))
			_, err := c.Read(make([]byte, 10))
			return err
		}, "", 5 * unit, 7 * unit},
		{"unauthenticated again: preauth from then", func(c *TimedConn, cl net.Conn) error {
			c.Authenticated()
			time.Sleep(4 * unit)
			c.Unauthenticated()
			c.SetReadDeadline(time.Now().Add(time.Minute))
			_, err := c.Read(make([]byte, 10))
			return err
		}, "preauth", 7 * unit, 10 * unit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var why []string
			c, cl := timedPair(t, Timeouts{PreAuth: 3 * unit, Command: 2 * unit,
				Expired: func(_ net.Conn, w string) { why = append(why, w) }})
			start := time.Now()
			err := tc.run(c, cl)
			el := time.Since(start)
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read ended with %v, want a timeout", err)
			}
			// atMost plus slack for a loaded machine.
			if el < tc.atLeast || el > tc.atMost+5*unit {
				t.Fatalf("read ended after %v, want %v..%v", el, tc.atLeast, tc.atMost)
			}
			if want := tc.why; (want == "" && len(why) != 0) || (want != "" && (len(why) != 1 || why[0] != want)) {
				t.Fatalf("Expired reported %q, want %q", why, want)
			}
			if tc.why != "" {
				// Ours is final: a new deadline from the server and
				// fresh bytes do not revive the connection.
				cl.Write([]byte("NOOP\r\n"))
				c.SetReadDeadline(time.Now().Add(time.Minute))
				if _, err := c.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("read after the bound: %v, want the timeout again", err)
				}
			}
		})
	}
}

// TestFindTimed finds the TimedConn below other wrappers.
func TestFindTimed(t *testing.T) {
	c, _ := timedPair(t, Timeouts{})
	if FindTimed(c) != c || FindTimed(wrapped{c}) != c || FindTimed(&net.TCPConn{}) != nil {
		t.Fatal("FindTimed does not find the TimedConn")
	}
}

type wrapped struct{ net.Conn }

func (w wrapped) NetConn() net.Conn { return w.Conn }
