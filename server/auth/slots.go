package auth

import (
	"context"
	"sync"
)

// slots hands out a fixed number of password-check slots fairly across
// client addresses. A check waits only while every slot is busy; when one
// frees, it goes to the waiting check whose address has the fewest recent
// failures, then the fewest checks already running, then the one that
// came first. So a spray of wrong passwords from many addresses queues
// behind itself, and a login from an address with a clean record takes
// the next free slot: it waits at most for one check to finish.
type slots struct {
	mu      sync.Mutex
	free    int
	seq     uint64
	waiting []*waiter
	running map[string]int
}

type waiter struct {
	key     string
	fails   int
	seq     uint64
	ready   chan struct{} // closed when the slot is granted
	granted bool
}

func newSlots(n int) *slots {
	return &slots{free: n, running: map[string]int{}}
}

// acquire waits for a slot for a check from address key, which has fails
// recent failures. It returns ctx's error if ctx ends first.
func (s *slots) acquire(ctx context.Context, key string, fails int) error {
	s.mu.Lock()
	if s.free > 0 && len(s.waiting) == 0 {
		s.free--
		s.running[key]++
		s.mu.Unlock()
		return nil
	}
	s.seq++
	w := &waiter{key: key, fails: fails, seq: s.seq, ready: make(chan struct{})}
	s.waiting = append(s.waiting, w)
	s.mu.Unlock()

	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		defer s.mu.Unlock()
		if w.granted {
			// Granted while giving up: pass the slot on.
			s.releaseLocked(key)
			return ctx.Err()
		}
		for i, x := range s.waiting {
			if x == w {
				s.waiting = append(s.waiting[:i], s.waiting[i+1:]...)
				break
			}
		}
		return ctx.Err()
	}
}

// release returns the slot a check from key held.
func (s *slots) release(key string) {
	s.mu.Lock()
	s.releaseLocked(key)
	s.mu.Unlock()
}

func (s *slots) releaseLocked(key string) {
	if s.running[key]--; s.running[key] <= 0 {
		delete(s.running, key)
	}
	if len(s.waiting) == 0 {
		s.free++
		return
	}
	best := 0
	for i, w := range s.waiting[1:] {
		if s.before(w, s.waiting[best]) {
			best = i + 1
		}
	}
	w := s.waiting[best]
	s.waiting = append(s.waiting[:best], s.waiting[best+1:]...)
	s.running[w.key]++
	w.granted = true
	close(w.ready)
}

// before orders waiters: fewer failures, fewer running checks of the
// same address, then arrival.
func (s *slots) before(a, b *waiter) bool {
	if a.fails != b.fails {
		return a.fails < b.fails
	}
	if ra, rb := s.running[a.key], s.running[b.key]; ra != rb {
		return ra < rb
	}
	return a.seq < b.seq
}
