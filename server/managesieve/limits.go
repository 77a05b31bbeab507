package managesieve

import (
	"io"
	"time"
)

// readDeadline is when a session waiting for a command is closed: the
// idle timeout after login, PreAuthTimeout after connecting before it (a
// client that never logs in cannot hold the connection by dripping).
func (c *conn) readDeadline() time.Time {
	d := time.Now().Add(c.idle())
	if c.user == "" {
		t := c.s.PreAuthTimeout
		if t <= 0 {
			t = 3 * time.Minute
		}
		if pre := c.start.Add(t); pre.Before(d) {
			d = pre
		}
	}
	return d
}

// deadlineWriter gives every write to the client its own deadline, so a
// client that stops reading is disconnected and a write after a long idle
// spell does not meet an old deadline.
type deadlineWriter struct {
	c *conn
	w io.Writer
}

func (d deadlineWriter) Write(b []byte) (int, error) {
	t := d.c.s.WriteTimeout
	if t <= 0 {
		t = time.Minute
	}
	d.c.nc.SetWriteDeadline(time.Now().Add(t))
	return d.w.Write(b)
}
