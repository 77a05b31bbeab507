package mailstore

// FolderUsage is the size of one folder.
type FolderUsage struct {
	Name     string
	Bytes    int64
	Messages int64
}

// Usage returns the bytes and messages of the whole tree as recorded in
// maildirsize (recomputed when missing, too big or stale).
func (s *Store) Usage() (bytes, messages int64, err error) { return 0, 0, errNotYet }

// FolderUsages scans every folder and returns its size (for mailmig quota).
func (s *Store) FolderUsages() ([]FolderUsage, error) { return nil, errNotYet }

// RecalcQuota rewrites maildirsize from a full scan.
func (s *Store) RecalcQuota() error { return errNotYet }
