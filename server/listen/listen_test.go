package listen

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// echoConn is a session that echoes lines, ends on Shutdown after the
// current line, and at once on Close.
func echoConn(nc net.Conn, served *atomic.Int32) Conn {
	stop := make(chan struct{}, 1)
	return Conn{
		Serve: func() {
			defer nc.Close()
			served.Add(1)
			r := bufio.NewReader(nc)
			for {
				select {
				case <-stop:
					nc.Write([]byte("BYE\n"))
					return
				default:
				}
				nc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
				line, err := r.ReadString('\n')
				if err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						continue
					}
					return
				}
				nc.Write([]byte(line))
			}
		},
		Shutdown: func() {
			select {
			case stop <- struct{}{}:
			default:
			}
		},
		Close: func() { nc.Close() },
	}
}

func start(t *testing.T) (*Group, string, chan error, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &Group{}
	var served atomic.Int32
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(ln, func(nc net.Conn) Conn { return echoConn(nc, &served) }) }()
	return g, ln.Addr().String(), errc, &served
}

func TestShutdownDrains(t *testing.T) {
	g, addr, errc, served := start(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	c.Write([]byte("hello\n"))
	if line, _ := r.ReadString('\n'); line != "hello\n" {
		t.Fatalf("echo = %q", line)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if line, _ := r.ReadString('\n'); line != "BYE\n" {
		t.Fatalf("after shutdown the client read %q, want BYE", line)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("Serve returned %v", err)
	}
	if served.Load() != 1 {
		t.Fatalf("served %d", served.Load())
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("still accepting after Shutdown")
	}
}

func TestShutdownDeadlineCloses(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	g := &Group{}
	block := make(chan struct{})
	closed := make(chan struct{})
	go g.Serve(ln, func(nc net.Conn) Conn {
		return Conn{
			Serve:    func() { <-block },
			Shutdown: func() {}, // ignores the request
			Close:    func() { close(closed); close(block) },
		}
	})
	c, _ := net.Dial("tcp", ln.Addr().String())
	defer c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		g.mu.Lock()
		n := len(g.conns)
		g.mu.Unlock()
		if n == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := g.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want deadline exceeded", err)
	}
	select {
	case <-closed:
	case <-time.After(time.Second):
		t.Fatal("a connection that ignored Shutdown was not closed at the deadline")
	}
	g.Wait()
}

func TestServeAfterStop(t *testing.T) {
	g := &Group{}
	g.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	if err := g.Serve(ln, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Serve after Close = %v", err)
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Fatal("listener left open")
	}
}
