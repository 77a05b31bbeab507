package imap

import (
	"container/list"
	"sync"
)

// headerCache keeps the CRLF headers of recently fetched messages, shared
// by all sessions of the server, so that clients listing a folder (FETCH
// of ENVELOPE or HEADER.FIELDS for many messages) do not open every file
// each time — what dovecot's cache file does for it. Entries are keyed by
// folder directory and the file name's base, which stays the same when
// flags change and is never reused for another message.
type headerCache struct {
	mu    sync.Mutex
	max   int
	size  int
	ll    *list.List
	items map[string]*list.Element
}

type headerEntry struct {
	key string
	h   []byte
}

func newHeaderCache(maxBytes int) *headerCache {
	return &headerCache{max: maxBytes, ll: list.New(), items: map[string]*list.Element{}}
}

// get returns a cached header; callers must not modify it.
func (c *headerCache) get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*headerEntry).h, true
	}
	return nil, false
}

// put stores a copy of h.
func (c *headerCache) put(key string, h []byte) {
	if len(h) > c.max/16 {
		return
	}
	h = append([]byte(nil), h...)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[key]; ok {
		return
	}
	c.items[key] = c.ll.PushFront(&headerEntry{key: key, h: h})
	c.size += len(h) + len(key)
	for c.size > c.max {
		e := c.ll.Back()
		he := e.Value.(*headerEntry)
		c.ll.Remove(e)
		delete(c.items, he.key)
		c.size -= len(he.h) + len(he.key)
	}
}
