package mailstore

import (
	"path/filepath"
	"sync"
	"weak"
)

// ChangeKind says what happened to a folder.
type ChangeKind int

// Kinds of Change.
const (
	// ChangeNew: a message with UID appeared (Flags set).
	ChangeNew ChangeKind = iota + 1
	// ChangeExpunge: the message with UID was removed.
	ChangeExpunge
	// ChangeFlags: the flags of UID are now Flags.
	ChangeFlags
	// ChangeUIDValidity: the folder was recreated or re-imported; all
	// UIDs are void, sessions must drop the folder.
	ChangeUIDValidity
	// ChangeFolderDeleted: the folder was deleted or renamed away.
	ChangeFolderDeleted
	// ChangeFolderCreated: the folder was created (WatchList only).
	ChangeFolderCreated
	// ChangeFolderRenamed: OldFolder is now Folder (WatchList only).
	ChangeFolderRenamed
	// ChangeSubscribed and ChangeUnsubscribed: the subscriptions file
	// changed for Folder (WatchList only).
	ChangeSubscribed
	ChangeUnsubscribed
)

// String returns the kind's name ("new", "expunge", ...).
func (k ChangeKind) String() string {
	switch k {
	case ChangeNew:
		return "new"
	case ChangeExpunge:
		return "expunge"
	case ChangeFlags:
		return "flags"
	case ChangeUIDValidity:
		return "uidvalidity"
	case ChangeFolderDeleted:
		return "folder-deleted"
	case ChangeFolderCreated:
		return "folder-created"
	case ChangeFolderRenamed:
		return "folder-renamed"
	case ChangeSubscribed:
		return "subscribed"
	case ChangeUnsubscribed:
		return "unsubscribed"
	}
	return "unknown"
}

// Change is one event on a folder. Events of one folder arrive in the
// order they happened; within this process each change is published once
// (all Stores sharing a Hub share one cached state per folder).
type Change struct {
	Kind      ChangeKind
	Folder    string // IMAP name
	OldFolder string // ChangeFolderRenamed: the name before
	UID       uint32
	Flags     []string
}

// Hub distributes Changes to watchers by (store root, folder) and holds
// the per-folder cached state shared by every Store of the process that
// uses it. All Stores of a process should share one Hub (DefaultHub).
type Hub struct {
	mu       sync.Mutex
	watchers map[string]map[*watcher]struct{} // root + "\x00" + folder
	// states holds the cached state per folder directory weakly: it
	// lives as long as some Folder handle uses it, so a long-running
	// server does not keep every folder it ever opened in memory.
	states map[string]weak.Pointer[folderState]
	gets   int
	// recent holds, per folder directory and strongly, the keys of
	// messages put in cur/ as \Recent and not yet claimed (folderState's
	// recentCur): a folder's state goes when no handle uses it, and a
	// message delivered with flags while nobody has the folder open is
	// still recent to the next session, as in dovecot.
	recent map[string]map[string]struct{}
}

// DefaultHub is used by Stores opened without Options.Hub.
var DefaultHub = NewHub()

// NewHub returns an empty hub.
func NewHub() *Hub {
	return &Hub{watchers: map[string]map[*watcher]struct{}{}, states: map[string]weak.Pointer[folderState]{}, recent: map[string]map[string]struct{}{}}
}

type watcher struct {
	mu     sync.Mutex
	queue  []Change
	wake   chan struct{}
	done   chan struct{}
	closed bool
}

func watchKey(root, folder string) string {
	return filepath.Clean(root) + "\x00" + normalizeName(folder)
}

// listKey is where the folder list events of the tree at root go; no
// folder key has it (a folder name never ends the key with "\x01").
func listKey(root string) string {
	return filepath.Clean(root) + "\x01"
}

// Watch returns a channel of changes to folder of the tree at root and a
// stop function that closes it. Events queue without bound until read, so
// publishers never block; the stop function may be called more than once.
func (h *Hub) Watch(root, folder string) (<-chan Change, func()) {
	return h.watch(watchKey(root, folder))
}

// WatchList is Watch for the folder list of the tree at root: folders
// created, deleted and renamed, subscriptions added and removed, through
// any Store of this process sharing the hub (RFC 5465 §5.4, §5.5 need
// them). Changes by other processes are not seen here; a watcher that
// needs them compares the tree itself (Store.ListStamp).
func (h *Hub) WatchList(root string) (<-chan Change, func()) {
	return h.watch(listKey(root))
}

func (h *Hub) watch(key string) (<-chan Change, func()) {
	w := &watcher{wake: make(chan struct{}, 1), done: make(chan struct{})}
	h.mu.Lock()
	if h.watchers[key] == nil {
		h.watchers[key] = map[*watcher]struct{}{}
	}
	h.watchers[key][w] = struct{}{}
	h.mu.Unlock()
	out := make(chan Change)
	go w.pump(out)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.watchers[key], w)
			if len(h.watchers[key]) == 0 {
				delete(h.watchers, key)
			}
			h.mu.Unlock()
			w.mu.Lock()
			w.closed = true
			w.mu.Unlock()
			close(w.done)
		})
	}
	return out, stop
}

func (w *watcher) pump(out chan<- Change) {
	defer close(out)
	for {
		w.mu.Lock()
		var next []Change
		next, w.queue = w.queue, nil
		w.mu.Unlock()
		for _, c := range next {
			select {
			case out <- c:
			case <-w.done:
				return
			}
		}
		select {
		case <-w.wake:
		case <-w.done:
			return
		}
	}
}

// watched reports whether some session of this process watches folder
// of the tree at root.
func (h *Hub) watched(root, folder string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.watchers[watchKey(root, folder)]) > 0
}

// Publish sends changes of the tree at root to the watchers of their
// folders. It never blocks.
func (h *Hub) Publish(root string, changes ...Change) {
	if len(changes) == 0 {
		return
	}
	h.mu.Lock()
	var targets []*watcher
	var lists [][]Change
	byFolder := map[string][]Change{}
	for _, c := range changes {
		byFolder[c.Folder] = append(byFolder[c.Folder], c)
	}
	for folder, cs := range byFolder {
		for w := range h.watchers[watchKey(root, folder)] {
			targets = append(targets, w)
			lists = append(lists, cs)
		}
	}
	h.mu.Unlock()
	h.deliver(targets, lists)
}

// publishList sends folder list changes of the tree at root to its
// WatchList watchers.
func (h *Hub) publishList(root string, changes ...Change) {
	if len(changes) == 0 {
		return
	}
	h.mu.Lock()
	var targets []*watcher
	var lists [][]Change
	for w := range h.watchers[listKey(root)] {
		targets = append(targets, w)
		lists = append(lists, changes)
	}
	h.mu.Unlock()
	h.deliver(targets, lists)
}

func (h *Hub) deliver(targets []*watcher, lists [][]Change) {
	for i, w := range targets {
		w.mu.Lock()
		if !w.closed {
			w.queue = append(w.queue, lists[i]...)
		}
		w.mu.Unlock()
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// state returns the shared cached state of a folder directory.
func (h *Hub) state(dir string) *folderState {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gets++; h.gets%1024 == 0 {
		for d, wp := range h.states {
			if wp.Value() == nil {
				delete(h.states, d)
				// No live state writes it: safe to look at here.
				if len(h.recent[d]) == 0 {
					delete(h.recent, d)
				}
			}
		}
	}
	if st := h.states[dir].Value(); st != nil {
		return st
	}
	st := &folderState{dir: dir, hub: h, recentCur: h.recent[dir]}
	h.states[dir] = weak.Make(st)
	return st
}

// recentSet returns dir's set of recent keys in cur/, made if need be.
func (h *Hub) recentSet(dir string) map[string]struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.recent[dir]
	if m == nil {
		m = map[string]struct{}{}
		h.recent[dir] = m
	}
	return m
}

// forget drops the cached state of dir and of folders below it (after a
// delete, rename or import).
func (h *Hub) forget(dir string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for d := range h.states {
		if d == dir || (len(d) > len(dir) && d[:len(dir)] == dir && d[len(dir)] == '.') {
			delete(h.states, d)
		}
	}
	for d := range h.recent {
		if d == dir || (len(d) > len(dir) && d[:len(dir)] == dir && d[len(dir)] == '.') {
			delete(h.recent, d)
		}
	}
}
