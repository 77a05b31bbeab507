package mailstore

// Folders lists every folder of the tree, INBOX first, then by name.
func (s *Store) Folders() ([]FolderInfo, error) { return nil, errNotYet }

// CreateFolder creates folder name (IMAP form, '/' separated) with its
// cur/new/tmp and maildirfolder file. Missing parents are not created
// (Maildir++ does not need them). ErrFolderExists if it exists.
func (s *Store) CreateFolder(name string) error { return errNotYet }

// DeleteFolder removes folder name with all its messages. Children stay
// (Maildir++ folders are independent directories). INBOX cannot be
// deleted.
func (s *Store) DeleteFolder(name string) error { return errNotYet }

// RenameFolder renames folder oldName and its children to newName.
// Renaming INBOX is not supported (ErrInboxOp). Subscriptions follow.
func (s *Store) RenameFolder(oldName, newName string) error { return errNotYet }

// Subscribe adds name to the subscriptions file (dovecot's format).
func (s *Store) Subscribe(name string) error { return errNotYet }

// Unsubscribe removes name from the subscriptions file.
func (s *Store) Unsubscribe(name string) error { return errNotYet }

// Subscriptions returns the subscribed folder names (IMAP form), in file
// order. Names need not exist as folders.
func (s *Store) Subscriptions() ([]string, error) { return nil, errNotYet }

// SetSubscriptions replaces the subscriptions file with names (for the
// converter).
func (s *Store) SetSubscriptions(names []string) error { return errNotYet }

// Folder returns the folder with IMAP name name ("INBOX" case-insensitive
// for the root). The returned *Folder is shared by all callers of this
// Store. ErrNoSuchFolder if it does not exist.
func (s *Store) Folder(name string) (*Folder, error) { return nil, errNotYet }
