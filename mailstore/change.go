package mailstore

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
)

// Change is one event on a folder.
type Change struct {
	Kind   ChangeKind
	Folder string // IMAP name
	UID    uint32
	Flags  []string
}

// Hub distributes Changes to watchers by (store root, folder). All Stores
// of a process that share a Hub see each other's changes immediately.
type Hub struct{}

// DefaultHub is used by Stores opened without Options.Hub.
var DefaultHub = NewHub()

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{} }

// Watch returns a channel of changes to folder of the tree at root and a
// stop function that closes it.
func (h *Hub) Watch(root, folder string) (<-chan Change, func()) { return nil, func() {} }

// Publish sends changes of folder of the tree at root to its watchers.
func (h *Hub) Publish(root string, changes ...Change) {}
