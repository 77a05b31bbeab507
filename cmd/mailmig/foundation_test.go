package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHelpListsCommands(t *testing.T) {
	out := mustMailmig(t, "", "--help")
	for _, c := range []string{"enqueue", "run", "status", "events", "user", "config", "convert", "deliver", "serve", "stop", "quota"} {
		if !strings.Contains(out, "\n   "+c) {
			t.Errorf("--help does not list %s:\n%s", c, out)
		}
	}
	if v := mustMailmig(t, "", "--version"); !strings.Contains(v, "mailmig version") {
		t.Errorf("--version printed %q", v)
	}
	// Every command's help has an example.
	for _, c := range [][]string{{"enqueue"}, {"run"}, {"status"}, {"events"}, {"stop"}, {"convert"}, {"deliver"},
		{"serve"}, {"user", "add"}, {"user", "passwd"}, {"user", "quota"}, {"user", "del"}, {"user", "list"},
		{"quota"}, {"config", "default"}, {"config", "check"}} {
		if h := mustMailmig(t, "", append(c, "--help")...); !strings.Contains(h, "Example") {
			t.Errorf("%s --help has no example:\n%s", c, h)
		}
	}
}

func TestEnqueueStatusEvents(t *testing.T) {
	dir := t.TempDir()
	addOldUsers(t, dir, "alice", "bob")

	out := mustMailmig(t, dir, "enqueue", "--folders", "--deadline", "2009-10-15", "alice", "bob")
	if !strings.Contains(out, "alice: enqueued") || !strings.Contains(out, "bob: enqueued") {
		t.Fatalf("enqueue output: %q", out)
	}
	out = mustMailmig(t, dir, "enqueue", "alice")
	if !strings.Contains(out, "alice: already in the queue (queued), unchanged") {
		t.Fatalf("second enqueue output: %q", out)
	}

	// An unknown user is a clear error and nothing is enqueued.
	_, errOut, code := runMailmig(t, dir, "enqueue", "carol", "mallory")
	if code == 0 || !strings.Contains(errOut, "mallory") || !strings.Contains(errOut, "nothing enqueued") {
		t.Fatalf("unknown user: exit %d, stderr %q", code, errOut)
	}

	out = mustMailmig(t, dir, "status")
	for _, want := range []string{"USER", "alice", "bob", "queued", "2 users: 2 queued"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "carol") {
		t.Errorf("carol was enqueued although mallory was unknown:\n%s", out)
	}

	var js struct {
		Users []struct {
			User        string `json:"user"`
			State       string `json:"state"`
			CopyFolders bool   `json:"copy_folders"`
			Forced      bool   `json:"forced"`
		} `json:"users"`
		Summary struct {
			Total int            `json:"total"`
			Users map[string]int `json:"users"`
		} `json:"summary"`
	}
	if err := json.Unmarshal([]byte(mustMailmig(t, dir, "status", "--json")), &js); err != nil {
		t.Fatal(err)
	}
	if len(js.Users) != 2 || js.Users[0].User != "alice" || js.Users[0].State != "queued" || !js.Users[0].CopyFolders || !js.Users[0].Forced {
		t.Fatalf("status --json users: %+v", js.Users)
	}
	if js.Summary.Total != 2 || js.Summary.Users["queued"] != 2 {
		t.Fatalf("status --json summary: %+v", js.Summary)
	}

	out = mustMailmig(t, dir, "status", "alice")
	if !strings.Contains(out, "forced (enqueued after the deadline)") || !strings.Contains(out, "deadline:      2009-10-15") {
		t.Errorf("status alice:\n%s", out)
	}

	out = mustMailmig(t, dir, "events", "alice")
	if !strings.Contains(out, "enqueued") || !strings.Contains(out, "folders=true deadline=2009-10-15") {
		t.Fatalf("events alice:\n%s", out)
	}
	if _, errOut, code := runMailmig(t, dir, "events", "nobody"); code == 0 || !strings.Contains(errOut, "not in the queue") {
		t.Fatalf("events nobody: exit %d %q", code, errOut)
	}
}

func TestEnqueueFromFile(t *testing.T) {
	dir := t.TempDir()
	addOldUsers(t, dir, "u1", "u2", "u3")
	list := filepath.Join(dir, "users.txt")
	os.WriteFile(list, []byte("# wave 1\nu1\nu2 u3\n\nu1\n"), 0o644)
	out := mustMailmig(t, dir, "enqueue", "--from-file", list)
	if strings.Count(out, "enqueued") != 3 {
		t.Fatalf("from-file: %q", out)
	}
}

func TestConfigCommands(t *testing.T) {
	def := mustMailmig(t, "", "config", "default")
	for _, key := range []string{"[old]", "inbox = \"/var/mail/%u\"", "folder_copy = \"500MB\"", "quota = \"1GB\"", "message_size = \"50MB\"", "dual_window = \"48h\"", "maildir = \"/srv/mail/%u/Maildir\""} {
		if !strings.Contains(def, key) {
			t.Errorf("config default lacks %q", key)
		}
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte(def), 0o644)
	if out := mustMailmig(t, "", "config", "check", good); !strings.Contains(out, "OK") {
		t.Fatalf("check default: %q", out)
	}
	tests := []struct {
		name, text, want string
	}{
		{"unknown key", "[old]\ninbox = \"/var/mail/%u\"\nspool_dir = \"/x\"\n", "bad.toml:3: old.spool_dir: unknown key"},
		{"bad size", "[limits]\n\nquota = \"lots\"\n", "bad.toml:3"},
		{"bad template", "[store]\nmaildir = \"/srv/%x/Maildir\"\n", "bad.toml:2: store.maildir: template"},
		{"syntax", "[server]\nhostname = \n", "bad.toml:2"},
		{"bad listener", "[imap]\nlisteners = [ { address = \":143\", tls = \"maybe\" } ]\n", "imap.listeners: tls must be"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bad := filepath.Join(dir, "bad.toml")
			os.WriteFile(bad, []byte(tc.text), 0o644)
			_, errOut, code := runMailmig(t, "", "config", "check", bad)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q, want it to contain %q", code, errOut, tc.want)
			}
		})
	}
	// An explicit --config that does not exist is an error; the default
	// path may be absent.
	if _, errOut, code := runMailmig(t, "", "--config", filepath.Join(dir, "missing.toml"), "status"); code == 0 || !strings.Contains(errOut, "missing.toml") {
		t.Fatalf("missing --config: exit %d %q", code, errOut)
	}
}

func TestUserAccounts(t *testing.T) {
	dir := t.TempDir()
	createUser(t, dir, "alice", "correct horse")
	_, errOut, code := runMailmigStdin(t, dir, "x\n", "user", "add", "alice")
	if code == 0 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("duplicate add: %d %q", code, errOut)
	}
	_, errOut, code = runMailmigStdin(t, dir, "", "user", "add", "bob")
	if code == 0 || !strings.Contains(errOut, "no password") {
		t.Fatalf("add without password: %d %q", code, errOut)
	}
	mustMailmig(t, dir, "user", "quota", "--quota", "2GB", "alice")
	out := mustMailmig(t, dir, "user", "list")
	if !strings.Contains(out, "alice") || !strings.Contains(out, "2GB") {
		t.Fatalf("user list:\n%s", out)
	}
	if _, _, code := runMailmigStdin(t, dir, "new pw\n", "user", "passwd", "alice"); code != 0 {
		t.Fatal("passwd failed")
	}
	// The password never reaches the database in clear.
	db, _ := os.ReadFile(filepath.Join(dir, "state.db"))
	wal, _ := os.ReadFile(filepath.Join(dir, "state.db-wal"))
	if strings.Contains(string(db)+string(wal), "new pw") || strings.Contains(string(db)+string(wal), "correct horse") {
		t.Fatal("a password is stored in clear")
	}
	mustMailmig(t, dir, "user", "del", "alice")
	if out := mustMailmig(t, dir, "user", "list"); strings.Contains(out, "alice") {
		t.Fatalf("deleted user listed:\n%s", out)
	}
}
