package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLogFormatJSON: server.log_format = "json" makes every line serve
// writes one JSON object with time, level and msg; an idle server then
// writes nothing more at INFO (no periodic noise).
func TestLogFormatJSON(t *testing.T) {
	dir := t.TempDir()
	s := startServeConfig(t, dir, "[server]\nlog_format = \"json\"\n")
	time.Sleep(3 * time.Second)
	s.Stop()
	lines := strings.Split(strings.TrimSpace(s.Log()), "\n")
	if len(lines) < 2 {
		t.Fatalf("serve logged %d lines:\n%s", len(lines), s.Log())
	}
	serving, stopping := -1, -1
	for i, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i+1, err, l)
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("line %d lacks %q: %s", i+1, k, l)
			}
		}
		switch {
		case rec["msg"] == "mailmig serving":
			serving = i
		case rec["msg"] == "stopping":
			stopping = i
		}
	}
	if serving < 0 || stopping < 0 {
		t.Fatalf("no start or stop line:\n%s", s.Log())
	}
	if stopping != serving+1 {
		t.Errorf("an idle server logged between start and stop (periodic noise):\n%s", strings.Join(lines[serving:stopping+1], "\n"))
	}
}

// TestLogFormatRefused: config check names the key of a bad log_format.
func TestLogFormatRefused(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(cfg, []byte("[server]\nlog_format = \"xml\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runMailmig(t, "", "config", "check", cfg)
	if code == 0 || !strings.Contains(errOut, "server.log_format") {
		t.Fatalf("config check of log_format = xml: exit %d: %s", code, errOut)
	}
}
