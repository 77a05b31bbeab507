//go:build !linux

package mailstore

import (
	"errors"
	"os"
)

// syncFS is not available: callers fsync each file.
func syncFS(dir string) error { return errors.ErrUnsupported }

// setDirect: no O_DIRECT here; only "off" is possible.
func setDirect(_ *os.File, on bool) bool { return !on }
