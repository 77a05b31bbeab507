// Package sdnotify tells systemd about a service's state through the
// datagram socket named by $NOTIFY_SOCKET (sd_notify(3), the protocol of
// a Type=notify unit): READY=1 once the listeners are bound, RELOADING=1
// while a SIGHUP is handled, STOPPING=1 at shutdown. Without
// $NOTIFY_SOCKET (not started by systemd) every call does nothing.
//
// The protocol is one unixgram datagram of newline-separated
// VARIABLE=value lines; a name starting with '@' is in the abstract
// namespace. It is a few lines, so it is written here rather than pulled
// in with a module.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Notifier sends state changes to the service manager.
type Notifier struct {
	addr string // "" = not under systemd
}

// FromEnv returns a Notifier for $NOTIFY_SOCKET. It unsets the variable,
// so programs the service starts do not talk to systemd in its name.
func FromEnv() *Notifier {
	addr := os.Getenv("NOTIFY_SOCKET")
	os.Unsetenv("NOTIFY_SOCKET")
	return &Notifier{addr: addr}
}

// Enabled reports whether a service manager listens.
func (n *Notifier) Enabled() bool { return n != nil && n.addr != "" }

// Send writes one notification of the given VARIABLE=value lines.
func (n *Notifier) Send(lines ...string) error {
	if !n.Enabled() {
		return nil
	}
	name := n.addr
	if strings.HasPrefix(name, "@") {
		name = "\x00" + name[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sdnotify: %s: %w", n.addr, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(strings.Join(lines, "\n") + "\n")); err != nil {
		return fmt.Errorf("sdnotify: %s: %w", n.addr, err)
	}
	return nil
}

// Ready says start-up is complete (listeners bound) and names the main PID.
func (n *Notifier) Ready(status string) error {
	return n.Send("READY=1", fmt.Sprintf("MAINPID=%d", os.Getpid()), "STATUS="+oneLine(status))
}

// Reloading says a reload began; call Ready when it is over. MONOTONIC_USEC
// is what systemd ≥ 253 asks of a Type=notify-reload service.
func (n *Notifier) Reloading() error {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return err
	}
	usec := ts.Sec*int64(time.Second/time.Microsecond) + ts.Nsec/int64(time.Microsecond)
	return n.Send("RELOADING=1", fmt.Sprintf("MONOTONIC_USEC=%d", usec))
}

// Stopping says a graceful stop began.
func (n *Notifier) Stopping() error { return n.Send("STOPPING=1") }

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }
