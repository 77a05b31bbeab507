package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"mailmig/cmd/mailmig/config"
	"mailmig/server/tlsconf"
)

// tlsCommand is `mailmig tls check HOST:PORT`: connect like a client and
// say what a client would complain about (issue 9 item 6).
func tlsCommand() *cli.Command {
	return &cli.Command{
		Name:  "tls",
		Usage: "check TLS as a client sees it",
		Subcommands: []*cli.Command{{
			Name:      "check",
			Usage:     "connect to HOST:PORT, print the chain, what a client would complain about, and the fix",
			ArgsUsage: "HOST:PORT",
			Description: `Connects like a mail client (implicit TLS, or plain text and STARTTLS with
--starttls imap|smtp|sieve), prints the certificate chain the server sends,
and checks it: complete and in order up to a root in the system store (or
--ca-file), covering HOST (or --name), not expired or expiring within 30
days. Exit status 0: a client would accept it; 1: it would not.

Examples:
   mailmig tls check mail.example.org:993
   mailmig tls check --starttls imap mail.example.org:143
   mailmig tls check --starttls smtp --name smtp.example.org mail.example.org:587
   mailmig tls check --starttls sieve mail.example.org:4190`,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "starttls", Usage: "protocol to speak before STARTTLS: imap, smtp or sieve"},
				&cli.StringFlag{Name: "name", Usage: "host `NAME` the certificate must cover (default: HOST)"},
				&cli.StringFlag{Name: "ca-file", Usage: "extra trusted roots, PEM `FILE`"},
				&cli.DurationFlag{Name: "timeout", Value: 15 * time.Second, Usage: "connect and handshake timeout"},
			},
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return cli.Exit("usage: mailmig tls check [--starttls imap|smtp|sieve] HOST:PORT", 2)
				}
				addr := c.Args().First()
				host, _, err := net.SplitHostPort(addr)
				if err != nil {
					return cli.Exit(fmt.Sprintf("tls check: %s: %v", addr, err), 2)
				}
				name := c.String("name")
				if name == "" {
					name = host
				}
				chain, state, err := fetchChain(addr, name, c.String("starttls"), c.Duration("timeout"))
				if err != nil {
					return cli.Exit(fmt.Sprintf("tls check: %s: %v", addr, err), 1)
				}
				w := c.App.Writer
				fmt.Fprintf(w, "%s: %s, %s\n", addr, tlsVersionName(state.Version), tls.CipherSuiteName(state.CipherSuite))
				for i, cert := range chain {
					fmt.Fprintf(w, "  %d  subject %q\n     issuer  %q\n     valid   %s to %s\n", i+1, cert.Subject.CommonName, cert.Issuer.CommonName,
						cert.NotBefore.UTC().Format("2006-01-02"), cert.NotAfter.UTC().Format("2006-01-02"))
					if i == 0 && len(cert.DNSNames) > 0 {
						fmt.Fprintf(w, "     names   %s\n", strings.Join(cert.DNSNames, ", "))
					}
				}
				findings := tlsconf.CheckChain(chain, tlsconf.CheckOptions{Names: []string{name}, CAFile: c.String("ca-file")})
				for _, f := range findings {
					fmt.Fprintln(w, f.String())
				}
				if tlsconf.HasErrors(findings) {
					return cli.Exit("", 1)
				}
				fmt.Fprintln(w, "OK: a client would accept this certificate")
				return nil
			},
		}},
	}
}

// fetchChain connects (with STARTTLS in proto's dialogue when proto is
// set) and returns the chain the server sent, unverified.
func fetchChain(addr, name, proto string, timeout time.Duration) ([]*x509.Certificate, tls.ConnectionState, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, tls.ConnectionState{}, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	if proto != "" {
		if err := startTLSDialogue(conn, proto); err != nil {
			return nil, tls.ConnectionState{}, fmt.Errorf("STARTTLS (%s): %w", proto, err)
		}
	}
	// Verification is done by CheckChain, which explains what is wrong.
	tc := tls.Client(conn, &tls.Config{ServerName: name, InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		return nil, tls.ConnectionState{}, fmt.Errorf("handshake: %w", err)
	}
	st := tc.ConnectionState()
	if len(st.PeerCertificates) == 0 {
		return nil, st, fmt.Errorf("the server sent no certificate")
	}
	return st.PeerCertificates, st, nil
}

// startTLSDialogue speaks the protocol up to STARTTLS: IMAP (RFC 9051
// §6.2.1), SMTP (RFC 3207 §4), ManageSieve (RFC 5804 §2.2).
func startTLSDialogue(conn net.Conn, proto string) error {
	r := bufio.NewReader(conn)
	line := func() (string, error) {
		s, err := r.ReadString('\n')
		return strings.TrimRight(s, "\r\n"), err
	}
	send := func(s string) error { _, err := io.WriteString(conn, s+"\r\n"); return err }
	switch proto {
	case "imap":
		if _, err := line(); err != nil {
			return err
		}
		if err := send("a STARTTLS"); err != nil {
			return err
		}
		for {
			l, err := line()
			if err != nil {
				return err
			}
			if strings.HasPrefix(l, "a ") {
				if !strings.HasPrefix(strings.ToUpper(l), "A OK") {
					return fmt.Errorf("server said %q", l)
				}
				return nil
			}
		}
	case "smtp":
		readReply := func() (string, error) {
			for {
				l, err := line()
				if err != nil {
					return "", err
				}
				if len(l) < 4 || l[3] != '-' {
					return l, nil
				}
			}
		}
		if _, err := readReply(); err != nil {
			return err
		}
		if err := send("EHLO mailmig-tls-check"); err != nil {
			return err
		}
		if _, err := readReply(); err != nil {
			return err
		}
		if err := send("STARTTLS"); err != nil {
			return err
		}
		l, err := readReply()
		if err != nil {
			return err
		}
		if !strings.HasPrefix(l, "220") {
			return fmt.Errorf("server said %q", l)
		}
		return nil
	case "sieve":
		for { // capabilities end with OK
			l, err := line()
			if err != nil {
				return err
			}
			if strings.HasPrefix(strings.ToUpper(l), "OK") {
				break
			}
		}
		if err := send("STARTTLS"); err != nil {
			return err
		}
		l, err := line()
		if err != nil {
			return err
		}
		if !strings.HasPrefix(strings.ToUpper(l), "OK") {
			return fmt.Errorf("server said %q", l)
		}
		return nil
	}
	return fmt.Errorf("unknown protocol %q (imap, smtp or sieve)", proto)
}

func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLS 1.0"
	case tls.VersionTLS11:
		return "TLS 1.1"
	case tls.VersionTLS12:
		return "TLS 1.2"
	case tls.VersionTLS13:
		return "TLS 1.3"
	}
	return fmt.Sprintf("TLS 0x%04x", v)
}

// tlsNames are the host names users are shown, which the certificate
// must cover.
func tlsNames(cfg *config.Config) []string {
	seen := map[string]bool{}
	var out []string
	names := []string{cfg.Server.Hostname, cfg.Client.IMAPHost, cfg.Client.SubmissionHost}
	if len(cfg.Web.Listeners) > 0 {
		names = append(names, cfg.WebHost())
	}
	for _, n := range names {
		if n != "" && !seen[strings.ToLower(n)] {
			seen[strings.ToLower(n)] = true
			out = append(out, n)
		}
	}
	return out
}

// checkTLSFiles runs the certificate checks on the configured files
// (nil when no certificate is installed: the caller says so).
func checkTLSFiles(cfg *config.Config) ([]tlsconf.Finding, bool) {
	if _, err := os.Stat(cfg.TLS.Cert); os.IsNotExist(err) {
		return nil, false
	}
	return tlsconf.CheckFiles(cfg.TLS.Cert, cfg.TLS.Key, tlsconf.CheckOptions{Names: tlsNames(cfg), CAFile: cfg.TLS.CAFile}), true
}

// logTLSFindings logs the certificate checks at serve start and SIGHUP:
// errors loudly (the server still starts: an incomplete chain works for
// some clients), warnings as warnings.
func logTLSFindings(e *env, cfg *config.Config) {
	if cfg.DataDir != "" && tlsconf.SelfSignedFile(cfg.TLS.Cert) {
		return // the demo's own self-signed certificate
	}
	findings, present := checkTLSFiles(cfg)
	if !present {
		return
	}
	for _, f := range findings {
		if f.Level == tlsconf.Error {
			e.log.Error("TLS certificate: clients will complain", "problem", f.Msg, "fix", f.Fix)
		} else {
			e.log.Warn("TLS certificate", "problem", f.Msg, "fix", f.Fix)
		}
	}
}
