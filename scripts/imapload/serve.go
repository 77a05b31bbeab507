package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // profiling endpoint of the serve mode
	"os"
	"os/signal"
	"strings"
	"syscall"

	"mailmig/server/imap"
)

// passwordAuth accepts one password for every user.
type passwordAuth string

func (p passwordAuth) Authenticate(_ context.Context, _, _, password string) error {
	if password != string(p) {
		return errors.New("bad password")
	}
	return nil
}

// serve runs server/imap alone (no state database, one password for
// every user) with net/http/pprof, to profile the server under the
// mixed load:
//
//	imapload serve -maildir /tmp/x/%u/Maildir -addr 127.0.0.1:1143 -pprof 127.0.0.1:6060
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	tmpl := fs.String("maildir", "", "Maildir path template with %u")
	addr := fs.String("addr", "127.0.0.1:0", "IMAP listen address")
	pprof := fs.String("pprof", "127.0.0.1:6060", "pprof listen address")
	pass := fs.String("pass", "pw", "password of every user")
	noFsync := fs.Bool("nofsync", false, "turn off fsync in the store")
	fs.Parse(args)
	srv := imap.New(imap.Options{
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Auth:       passwordAuth(*pass),
		MaildirFor: func(u string) (string, error) { return strings.ReplaceAll(*tmpl, "%u", u), nil },
		NoFsync:    *noFsync,
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Println("imap", ln.Addr())
	go http.ListenAndServe(*pprof, nil)
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		srv.Close()
	}()
	if err := srv.Serve(ln, imap.ListenerOptions{Trusted: true}); !errors.Is(err, imap.ErrServerClosed) {
		return err
	}
	return nil
}
