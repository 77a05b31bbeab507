//go:build !linux

package mailstore

import "errors"

// syncFS is not available: callers fsync each file.
func syncFS(dir string) error { return errors.ErrUnsupported }
