package mailstore

import (
	"errors"
	"io"
	"os"
	"strings"
	"syscall"
)

func sanitizeHost(h string) string {
	return strings.NewReplacer("/", `\057`, ":", `\072`).Replace(h)
}

func normalizeName(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return name
}

func hasFlag(flags []string, f string) bool {
	for _, x := range flags {
		if strings.EqualFold(x, f) {
			return true
		}
	}
	return false
}

// openFile is os.OpenFile for regular files and directories on the
// delivery path, without os.OpenFile's attempt to register the file with
// the runtime poller (four fcntl calls and a failing epoll_ctl for every
// file, which never goes into the poller anyway).
func openFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	for {
		fd, err := syscall.Open(path, flag|syscall.O_CLOEXEC, uint32(perm.Perm()))
		if err == nil {
			return os.NewFile(uintptr(fd), path), nil
		}
		if !errors.Is(err, syscall.EINTR) {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
	}
}

// readFile is os.ReadFile through openFile, for the small files read on
// the delivery path (maildirsize).
func readFile(path string) ([]byte, error) {
	f, err := openFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
