package spool

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// Committed tells the lock that the last append is complete and
// accounted for (the caller recorded it durably elsewhere): the size
// recorded before it is dropped, so if this process is killed while
// still holding the lock the next locker no longer truncates the
// finished message away.
func (l *Locked) Committed() {
	writeLock(l.lockPath, strconv.Itoa(os.Getpid())+"\n")
}

// writeLock replaces the content of the dot-lock we hold atomically
// (a temporary file renamed over it): a process killed while writing
// must not leave an empty lock, which others could only judge by its
// age.
func writeLock(lockPath, content string) {
	tmp := fmt.Sprintf("%s.%d.%d", lockPath, os.Getpid(), time.Now().UnixNano())
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return
	}
	if err := os.Rename(tmp, lockPath); err != nil {
		os.Remove(tmp)
	}
}
