// Package listen is the accept loop and connection bookkeeping that
// mailmig's own line-protocol servers (IMAP, ManageSieve) share: the set of
// listeners to close when stopping, accept retries with backoff on every
// error but a closed listener (running out of file descriptors must not
// end a listener for good), one goroutine per connection, and a graceful drain
// (ask every connection to finish, wait, then close what is left).
package listen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// ErrClosed is returned by Serve once the group is stopping.
var ErrClosed = errors.New("listen: server closed")

// Conn is one accepted connection as the group drives it.
type Conn struct {
	// Serve runs the session; the connection is done when it returns.
	Serve func()
	// Shutdown asks the session to end after its current command.
	Shutdown func()
	// Close ends the session at once.
	Close func()
}

// Group tracks the listeners and connections of one server. The zero
// value is ready to use.
type Group struct {
	// Logger receives accept errors (slog.Default if nil).
	Logger *slog.Logger

	mu      sync.Mutex
	closing bool
	lns     map[net.Listener]struct{}
	conns   map[*Conn]struct{}
	wg      sync.WaitGroup
}

// Serve accepts connections on ln until the group stops, calling accept
// for each to set up its session. It returns ErrClosed when stopped, or
// the error that ended accepting.
func (g *Group) Serve(ln net.Listener, accept func(net.Conn) Conn) error {
	g.mu.Lock()
	if g.closing {
		g.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	if g.lns == nil {
		g.lns, g.conns = map[net.Listener]struct{}{}, map[*Conn]struct{}{}
	}
	g.lns[ln] = struct{}{}
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.lns, ln)
		g.mu.Unlock()
	}()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if g.stopping() {
				return ErrClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accept on %s: %w", ln.Addr(), err)
			}
			// EMFILE, ENFILE, ENOMEM, ECONNABORTED, timeouts: every
			// other error passes; back off and go on, never stop
			// serving (dovecot and go-smtp do the same).
			if delay == 0 {
				g.log().Warn("accept failed, retrying with backoff", "addr", ln.Addr().String(), "err", err)
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			time.Sleep(delay)
			continue
		}
		delay = 0
		c := accept(nc)
		g.mu.Lock()
		if g.closing {
			g.mu.Unlock()
			nc.Close()
			return ErrClosed
		}
		g.conns[&c] = struct{}{}
		g.wg.Add(1)
		g.mu.Unlock()
		go func() {
			defer g.wg.Done()
			c.Serve()
			g.mu.Lock()
			delete(g.conns, &c)
			g.mu.Unlock()
		}()
	}
}

func (g *Group) log() *slog.Logger {
	if g.Logger != nil {
		return g.Logger
	}
	return slog.Default()
}

func (g *Group) stopping() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closing
}

// stopListening marks the group stopping and closes its listeners.
func (g *Group) stopListening() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closing = true
	for ln := range g.lns {
		ln.Close()
	}
}

func (g *Group) each(f func(*Conn)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for c := range g.conns {
		f(c)
	}
}

// Shutdown stops accepting, asks every connection to finish and waits for
// them until ctx is done; then it closes the rest and returns ctx.Err().
func (g *Group) Shutdown(ctx context.Context) error {
	g.stopListening()
	g.each(func(c *Conn) { c.Shutdown() })
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		g.Close()
		return ctx.Err()
	}
}

// Close stops accepting and closes every connection at once, without
// waiting for their goroutines (Wait does).
func (g *Group) Close() {
	g.stopListening()
	g.each(func(c *Conn) { c.Close() })
}

// Wait waits for every connection's session to return.
func (g *Group) Wait() { g.wg.Wait() }
