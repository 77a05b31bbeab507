package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigCheckRefusesOpenTrust: `mailmig config check` refuses an
// open relay and a trusted listener anyone can reach, naming key and
// line, and exits non-zero; the explicit override is accepted.
func TestConfigCheckRefusesOpenTrust(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ text, want string }{
		{"[submission]\ntrusted_networks = [\"0.0.0.0/0\"]\n", "open relay"},
		{"[imap]\nlisteners = [{ address = \"0.0.0.0:143\", tls = \"none\", trusted = true }]\n", ":2: imap.listeners: listener 0.0.0.0:143 is trusted"},
	} {
		path := filepath.Join(dir, "c.toml")
		os.WriteFile(path, []byte(tc.text), 0o644)
		_, errOut, code := runMailmig(t, "", "config", "check", path)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("config check of %q: exit %d, %q; want an error with %q", tc.text, code, errOut, tc.want)
		}
		os.WriteFile(path, []byte("[server]\nallow_open_trust = true\n"+tc.text), 0o644)
		if out, errOut, code := runMailmig(t, "", "config", "check", path); code != 0 {
			t.Errorf("with allow_open_trust: exit %d: %s %s", code, out, errOut)
		}
	}
}
