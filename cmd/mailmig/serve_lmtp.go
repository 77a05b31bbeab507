package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"mailmig/server/delivery"
	"mailmig/server/lmtp"
)

// startLMTP starts LMTP on the [lmtp] unix socket (recorded as
// "lmtp-unix") and TCP listeners (recorded as "lmtp"), all delivering
// through e.deliverer.
func startLMTP(ctx context.Context, e *env) (func(context.Context) error, error) {
	if e.deliverer == nil {
		return nil, errors.New("no delivery configured")
	}
	s := &lmtp.Server{
		Deliverer: countingDeliverer{e.deliverer, "lmtp"},
		Resolve: func(addr string) (string, string, error) {
			user, detail, err := lmtp.SplitAddress(addr, e.cfg.Server.Domains)
			if err != nil || strings.EqualFold(user, e.cfg.Migration.ControlLocalPart) {
				return user, detail, err // the control address is no account
			}
			// Unknown users are refused at RCPT already (RFC 2033 §4.2).
			ok, err := e.recipientExists(context.Background(), user)
			if err != nil {
				return "", "", fmt.Errorf("lmtp: look up %s: %w", user, err)
			}
			if !ok {
				return "", "", fmt.Errorf("lmtp: %s: %w", addr, delivery.ErrUnknownUser)
			}
			return user, detail, nil
		},
		Hostname:        e.cfg.Server.Hostname,
		MaxMessageBytes: int64(e.cfg.Limits.MessageSize),
		Logger:          e.log.With("component", "lmtp"),
		SpoolThreshold:  int64(e.cfg.Connections.SpoolThreshold),
		WriteTimeout:    e.cfg.Connections.WriteTimeout.D(),
		PreMailTimeout:  e.cfg.Connections.PreAuthTimeout.D(),
		CommandTimeout:  e.cfg.Connections.CommandTimeout.D(),
	}
	var lns []net.Listener
	fail := func(err error) (func(context.Context) error, error) {
		for _, ln := range lns {
			ln.Close()
		}
		return nil, err
	}
	if sock := e.cfg.LMTP.Socket; sock != "" {
		ln, err := listenUnixCounted(sock, e.cfg.LMTP.SocketMode, e.cfg.LMTP.SocketGroup)
		if err != nil {
			return fail(fmt.Errorf("lmtp socket %s: %w", sock, err))
		}
		lns = append(lns, ln)
		e.addListener("lmtp-unix", ln)
	}
	for _, l := range e.cfg.LMTP.Listeners {
		ln, err := listenTCPAs("lmtp", l.Address)
		if err != nil {
			return fail(fmt.Errorf("lmtp listener %s: %w", l.Address, err))
		}
		lns = append(lns, ln)
		e.addListener("lmtp", ln)
	}
	for i, ln := range lns {
		lns[i] = e.limitListener("lmtp", ln, false, "421 4.7.0 "+e.cfg.Server.Hostname+" Too many connections, try again later\r\n")
	}
	for _, ln := range lns {
		go func() {
			if err := s.Serve(ln); err != nil {
				e.log.Error("lmtp listener stopped", "addr", ln.Addr().String(), "err", err)
			}
		}()
	}
	return func(sctx context.Context) error {
		err := s.Shutdown(sctx)
		if sock := e.cfg.LMTP.Socket; sock != "" {
			_ = os.Remove(sock)
		}
		return err
	}, nil
}

// listenUnix listens on a unix socket path, replacing a stale socket left
// by an earlier run (but never a file that is not a socket, nor a socket
// something still answers on).
func listenUnix(path, mode, group string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s is in use by another process", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	// The MTA's delivery agent connects as another user, through the
	// socket's group: nobody else may hand us mail.
	if err := socketPerms(path, mode, group); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// socketPerms sets the socket's group (by name; "" keeps it) and its
// octal mode.
func socketPerms(path, mode, group string) error {
	m, err := strconv.ParseUint(mode, 8, 32)
	if err != nil {
		return fmt.Errorf("socket mode %q: %w", mode, err)
	}
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return fmt.Errorf("socket group: %w", err)
		}
		gid, err := strconv.Atoi(g.Gid)
		if err != nil {
			return fmt.Errorf("socket group %s: gid %q", group, g.Gid)
		}
		if err := os.Chown(path, -1, gid); err != nil {
			return fmt.Errorf("socket group %s: %w", group, err)
		}
	}
	return os.Chmod(path, os.FileMode(m))
}
