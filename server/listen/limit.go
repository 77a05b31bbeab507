package listen

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// Limits bound the connections of one protocol. Zero means no limit.
type Limits struct {
	// Total is the most connections open at once.
	Total int
	// PerIP is the most connections from one address; IPv6 addresses
	// count per /64 (one site's hosts share a /64, and one host can
	// draw addresses from it at will).
	PerIP int
}

// Counter counts open connections against Limits. Its methods are safe
// for concurrent use.
type Counter struct {
	Limits Limits

	mu    sync.Mutex
	total int
	perIP map[string]int
}

// IPKey returns the key an address is counted under: the IPv4 address, or
// the IPv6 /64; "" for addresses without an IP (unix sockets).
func IPKey(addr net.Addr) string {
	var ip netip.Addr
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	default:
		if addr == nil {
			return ""
		}
		ap, err := netip.ParseAddrPort(addr.String())
		if err != nil {
			return ""
		}
		ip = ap.Addr()
	}
	ip = ip.Unmap()
	if !ip.IsValid() {
		return ""
	}
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// Acquire counts a connection from addr; ok is false (and nothing is
// counted) when a limit is reached. Call release exactly once when the
// connection ends; it may be called more than once safely.
func (c *Counter) Acquire(addr net.Addr) (release func(), ok bool) {
	key := IPKey(addr)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Limits.Total > 0 && c.total >= c.Limits.Total {
		return nil, false
	}
	if key != "" && c.Limits.PerIP > 0 && c.perIP[key] >= c.Limits.PerIP {
		return nil, false
	}
	c.total++
	if key != "" {
		if c.perIP == nil {
			c.perIP = map[string]int{}
		}
		c.perIP[key]++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.total--
			if key != "" {
				if c.perIP[key]--; c.perIP[key] <= 0 {
					delete(c.perIP, key)
				}
			}
		})
	}, true
}

// Open returns the number of connections counted now.
func (c *Counter) Open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// Limit wraps ln so that connections beyond c's limits are answered with
// refusal (the protocol's own "too many connections" line, e.g. IMAP's
// "* BYE [UNAVAILABLE] ...", SMTP's "421 4.7.0 ..."; nil for implicit-TLS
// listeners, where plain text would be noise) and closed at once. The
// servers behind it never see them.
func Limit(ln net.Listener, c *Counter, refusal []byte) net.Listener {
	return &limitListener{Listener: ln, c: c, refusal: refusal}
}

type limitListener struct {
	net.Listener
	c       *Counter
	refusal []byte
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		release, ok := l.c.Acquire(nc.RemoteAddr())
		if ok {
			return &limitConn{Conn: nc, release: release}, nil
		}
		// Answer without holding up the accept loop.
		go refuse(nc, l.refusal)
	}
}

func refuse(nc net.Conn, refusal []byte) {
	if len(refusal) > 0 {
		nc.SetWriteDeadline(time.Now().Add(2 * time.Second))
		nc.Write(refusal)
	}
	nc.Close()
}

// limitConn releases its count when closed.
type limitConn struct {
	net.Conn
	release func()
}

func (c *limitConn) Close() error {
	c.release()
	return c.Conn.Close()
}

// UserLimit counts sessions per key (the protocol, user and address, as
// dovecot's mail_max_userip_connections does). Max 0 means no limit.
type UserLimit struct {
	Max int

	mu sync.Mutex
	n  map[string]int
}

// UserIPKey is the UserLimit key of user logging in from remote.
func UserIPKey(user string, remote net.Addr) string {
	return user + "\x00" + IPKey(remote)
}

// Acquire counts a session under key; ok is false when Max are open.
func (u *UserLimit) Acquire(key string) (release func(), ok bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.Max > 0 && u.n[key] >= u.Max {
		return nil, false
	}
	if u.n == nil {
		u.n = map[string]int{}
	}
	u.n[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			u.mu.Lock()
			defer u.mu.Unlock()
			if u.n[key]--; u.n[key] <= 0 {
				delete(u.n, key)
			}
		})
	}, true
}
