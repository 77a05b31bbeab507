package managesieve

import (
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"mailmig/server/sieve"
)

// FuzzSession runs the whole command loop on arbitrary client input
// (authenticated or not): it must never panic or hang, and must leave
// only well-formed script files behind.
func FuzzSession(f *testing.F) {
	auth := "AUTHENTICATE \"PLAIN\" \"" + plain("alice", "wonderland") + "\"\r\n"
	for _, s := range []string{
		"CAPABILITY\r\nLOGOUT\r\n",
		auth + "PUTSCRIPT \"a\" {6+}\r\nkeep;\n\r\nSETACTIVE \"a\"\r\nLISTSCRIPTS\r\nGETSCRIPT \"a\"\r\nLOGOUT\r\n",
		auth + "PUTSCRIPT \"b\" {9+}\r\nif true {\r\nRENAMESCRIPT \"a\" \"c\"\r\nDELETESCRIPT \"c\"\r\n",
		auth + "HAVESPACE \"x\" 99999999999999999999\r\nCHECKSCRIPT {4}\r\nstop\r\nUNAUTHENTICATE\r\nNOOP \"x\"\r\n",
		"AUTHENTICATE \"PLAIN\"\r\n\"" + plain("alice", "wonderland") + "\"\r\nLISTSCRIPTS\r\n",
		"AUTHENTICATE \"PLAIN\"\r\n*\r\nSTARTTLS\r\n",
		"PUTSCRIPT \"../x\" {1+}\r\nx\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		home := t.TempDir()
		s := &Server{
			Hostname:          "h",
			AllowInsecureAuth: true,
			Auth:              fakeAuth{"alice": "wonderland"},
			IdleTimeout:       2 * time.Second,
			Storage: func(user string) (*sieve.Storage, error) {
				return &sieve.Storage{Dir: filepath.Join(home, "sieve"), ActiveLink: filepath.Join(home, ".dovecot.sieve"), MaxScriptSize: 4096, MaxScripts: 5}, nil
			},
			Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		}
		s.init()
		cli, srv := net.Pipe()
		c := newConn(s, srv)
		done := make(chan struct{})
		go func() { c.serve(); close(done) }()
		go io.Copy(io.Discard, cli)
		cli.SetWriteDeadline(time.Now().Add(5 * time.Second))
		cli.Write(data)
		cli.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("session did not end after the client left")
		}
		files, _ := filepath.Glob(filepath.Join(home, "sieve", "*"))
		for _, f := range files {
			if filepath.Ext(f) != sieve.Suffix {
				t.Errorf("unexpected file %s", f)
			}
		}
	})
}
