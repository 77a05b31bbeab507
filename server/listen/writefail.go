package listen

import "net"

// CloseOnWriteError wraps ln so that a connection whose write fails (a
// write deadline passed because the client reads nothing, or any other
// error) is closed at once. go-smtp ignores write errors ("TODO: error
// handling" in its writeResponse) and would go on reading pipelined
// commands, each answer waiting out the write deadline again; closing
// makes its next read fail and the session end.
func CloseOnWriteError(ln net.Listener) net.Listener {
	return writeFailListener{ln}
}

type writeFailListener struct{ net.Listener }

func (l writeFailListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &writeFailConn{Conn: c}, nil
}

type writeFailConn struct{ net.Conn }

func (c *writeFailConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil {
		c.Conn.Close()
	}
	return n, err
}
