package sdnotify

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestSend(t *testing.T) {
	for _, tc := range []struct{ name, env string }{
		{"path", filepath.Join(t.TempDir(), "notify")},
		{"abstract", "@mailmig-sdnotify-test-" + strconv.Itoa(os.Getpid())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := tc.env
			if strings.HasPrefix(name, "@") {
				name = "\x00" + name[1:]
			}
			c := listen(t, name)
			t.Setenv("NOTIFY_SOCKET", tc.env)
			n := FromEnv()
			if os.Getenv("NOTIFY_SOCKET") != "" {
				t.Error("FromEnv left NOTIFY_SOCKET set")
			}
			if !n.Enabled() {
				t.Fatal("not enabled")
			}
			if err := n.Ready("serving\nimap"); err != nil {
				t.Fatal(err)
			}
			got := recv(t, c)
			want := "READY=1\nMAINPID=" + itoa(os.Getpid()) + "\nSTATUS=serving imap\n"
			if got != want {
				t.Errorf("Ready sent %q, want %q", got, want)
			}
			if err := n.Reloading(); err != nil {
				t.Fatal(err)
			}
			if got := recv(t, c); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") || !strings.HasSuffix(got, "\n") {
				t.Errorf("Reloading sent %q", got)
			}
			if err := n.Stopping(); err != nil {
				t.Fatal(err)
			}
			if got := recv(t, c); got != "STOPPING=1\n" {
				t.Errorf("Stopping sent %q", got)
			}
		})
	}
}

func TestDisabled(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := FromEnv()
	if n.Enabled() {
		t.Fatal("enabled without NOTIFY_SOCKET")
	}
	if err := n.Ready("x"); err != nil {
		t.Fatal(err)
	}
	var nilN *Notifier
	if err := nilN.Stopping(); err != nil {
		t.Fatal(err)
	}
}

func TestNoListener(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "absent"))
	if err := FromEnv().Ready("x"); err == nil {
		t.Fatal("no error for a socket nobody listens on")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
