package config

import (
	"path/filepath"
	"testing"
)

// TestDataDirMetricsControl: --data moves the metrics listener to an
// ephemeral loopback port (also with a file that does not set it, so
// demos and tests never clash on the built-in 127.0.0.1:9154), keeps one
// a file put on loopback, and puts the control socket in the directory.
func TestDataDirMetricsControl(t *testing.T) {
	dir := t.TempDir()
	if d := Default(); d.Metrics.Listen != "127.0.0.1:9154" || d.Control.Socket != "/run/mailmig/control" {
		t.Fatalf("defaults: %q %q", d.Metrics.Listen, d.Control.Socket)
	}
	for _, tc := range []struct {
		file, want string
	}{
		{"", "127.0.0.1:0"},
		{"[server]\nlog_level = \"warn\"\n", "127.0.0.1:0"},
		{"[metrics]\nlisten = \"127.0.0.1:19154\"\n", "127.0.0.1:19154"},
		{"[metrics]\nlisten = \"0.0.0.0:9154\"\n", "127.0.0.1:0"},
		{"[metrics]\nlisten = \"\"\n", ""},
	} {
		c := Default()
		if tc.file != "" {
			var err error
			if c, err = Parse("t.toml", tc.file); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.ApplyDataDir(dir); err != nil {
			t.Fatal(err)
		}
		if c.Metrics.Listen != tc.want || c.Control.Socket != filepath.Join(dir, "control.sock") {
			t.Errorf("file %q: metrics %q control %q, want %q", tc.file, c.Metrics.Listen, c.Control.Socket, tc.want)
		}
	}
}
