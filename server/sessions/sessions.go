// Package sessions keeps the list of open client connections of a
// `mailmig serve` process, for the admin commands `mailmig who` and
// `mailmig kick` (doveadm who / doveadm kick) and the connection metrics.
//
// serve wraps each listener with Listen; a protocol server that
// authenticates a user on a connection calls LoggedIn with that
// connection (its net.Conn, or a tls.Conn over it). A connection is
// found by its pair of addresses (local and remote), which is unique
// among open TCP connections, so LoggedIn needs no handle to the wrapper
// and is a no-op for connections that were not accepted through it (the
// protocol packages' own tests).
//
// Kick closes a user's connections: the protocol server's next read
// fails and the session ends as if the client had gone, as with
// doveadm kick.
package sessions

import (
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"mailmig/server/metrics"
)

// Session is one open connection.
type Session struct {
	ID       uint64    `json:"id"`
	Protocol string    `json:"protocol"` // imap, imaps, submission, managesieve, lmtp...
	User     string    `json:"user"`     // "" before login
	Remote   string    `json:"remote"`   // client address:port
	Local    string    `json:"local"`    // our address:port
	Since    time.Time `json:"since"`    // connection accepted
	LoginAt  time.Time `json:"login_at,omitzero"`
}

// the process's sessions, and the TCP ones by local+remote address.
var (
	mu     sync.Mutex
	open   = map[*conn]struct{}{}
	byAddr = map[string]*conn{}
	nextID atomic.Uint64
)

// key is a TCP connection's address pair ("" for others, such as unix
// sockets, whose peers have no address).
func key(local, remote net.Addr) string {
	if local == nil || remote == nil || local.Network() != "tcp" {
		return ""
	}
	return local.String() + "|" + remote.String()
}

// Listen wraps ln so every accepted connection is listed (and counted in
// metrics as protocol) until it is closed.
func Listen(protocol string, ln net.Listener) net.Listener {
	return &listener{Listener: ln, protocol: protocol}
}

type listener struct {
	net.Listener
	protocol string
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	sc := &conn{Conn: c, s: Session{
		ID: nextID.Add(1), Protocol: l.protocol,
		Remote: c.RemoteAddr().String(), Local: c.LocalAddr().String(), Since: time.Now(),
	}}
	sc.closed = metrics.Connection(l.protocol)
	mu.Lock()
	open[sc] = struct{}{}
	if k := key(c.LocalAddr(), c.RemoteAddr()); k != "" {
		byAddr[k] = sc
	}
	mu.Unlock()
	return sc, nil
}

type conn struct {
	net.Conn
	s      Session // guarded by mu
	closed func()
	once   sync.Once
}

func (c *conn) Close() error {
	c.once.Do(func() {
		mu.Lock()
		delete(open, c)
		if k := key(c.LocalAddr(), c.RemoteAddr()); k != "" && byAddr[k] == c {
			delete(byAddr, k)
		}
		mu.Unlock()
		c.closed()
	})
	return c.Conn.Close()
}

// NetConn returns the wrapped connection.
func (c *conn) NetConn() net.Conn { return c.Conn }

// LoggedIn records that user authenticated on nc.
func LoggedIn(nc net.Conn, user string) {
	if nc == nil {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	if k := key(nc.LocalAddr(), nc.RemoteAddr()); k == "" {
		return
	} else if c := byAddr[k]; c != nil {
		c.s.User, c.s.LoginAt = user, time.Now()
	}
}

// List returns the open sessions, logged-in ones only unless all, oldest
// first.
func List(all bool) []Session {
	mu.Lock()
	out := make([]Session, 0, len(open))
	for c := range open {
		if all || c.s.User != "" {
			out = append(out, c.s)
		}
	}
	mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Kick closes every connection of user (of protocol too, unless "") and
// returns the sessions it closed.
func Kick(user, protocol string) []Session {
	mu.Lock()
	var victims []*conn
	var out []Session
	for c := range open {
		if c.s.User == user && (protocol == "" || c.s.Protocol == protocol) {
			victims = append(victims, c)
			out = append(out, c.s)
		}
	}
	mu.Unlock()
	for _, c := range victims {
		c.Close()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
