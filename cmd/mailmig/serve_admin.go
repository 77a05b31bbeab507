package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"mailmig/cmd/mailmig/config"
	"mailmig/server/auth"
	"mailmig/server/delivery"
	"mailmig/server/metrics"
	"mailmig/server/msgspool"
	"mailmig/server/outbound"
	"mailmig/server/sessions"
	"mailmig/state"
)

// What serve adds for the postmaster: the Prometheus endpoint on
// [metrics] listen, the control socket the admin commands talk to
// ([control] socket), and the counting around logins, deliveries and
// connections.

// startMetrics serves /metrics on [metrics] listen (plain HTTP).
func startMetrics(ctx context.Context, e *env) (func(context.Context) error, error) {
	metrics.SetSources(metricSources(e))
	if e.cfg.Metrics.Listen == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", e.cfg.Metrics.Listen)
	if err != nil {
		return nil, fmt.Errorf("metrics listener %s: %w", e.cfg.Metrics.Listen, err)
	}
	e.addListener("metrics", ln)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: nil}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error("metrics listener stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	return srv.Shutdown, nil
}

// metricSources are the figures read at scrape time.
func metricSources(e *env) metrics.Sources {
	s := metrics.Sources{
		Migration: func() (map[string]int, int64, int64, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			sum, err := e.db.Summarize(ctx)
			if err != nil {
				return nil, 0, 0, err
			}
			users := map[string]int{}
			for _, st := range state.States {
				users[string(st)] = sum.Users[st]
			}
			return users, sum.Bytes, sum.Messages, nil
		},
		MigrationErrors: func() (int64, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return e.db.CountEvents(ctx, "step-failed") // migrate.Runner's failed attempts
		},
	}
	s.Shared = func() (map[[2]string]int64, int64, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := e.db.Counters(ctx, sharedDeliveries)
		if err != nil {
			return nil, 0, err
		}
		out := map[[2]string]int64{}
		for labels, v := range c {
			via, outcome, _ := strings.Cut(labels, "/")
			out[[2]string{via, outcome}] += v
		}
		se, err := e.db.Counters(ctx, sharedSieveErrors)
		if err != nil {
			return nil, 0, err
		}
		return out, se["deliver"], nil
	}
	if q, ok := e.outbound.(*outbound.Queue); ok && q != nil {
		s.Outbound = q.Oldest
	}
	if e.tlsReload != nil {
		s.CertExpiry = e.tlsReload.NotAfter
	}
	return s
}

// listenAs is env.listen with the connections listed (who, kick) and
// counted as protocol ("imaps", "submissions" for implicit TLS).
func (e *env) listenAs(protocol string, l config.Listener) (net.Listener, error) {
	ln, err := e.listen(l)
	if err != nil {
		return nil, err
	}
	if l.TLS == config.TLSImplicit && (protocol == "imap" || protocol == "submission") {
		protocol += "s"
	}
	return sessions.Listen(protocol, ln), nil
}

// countingAuth counts each password check of one protocol by result.
type countingAuth struct {
	a        *auth.Authenticator
	protocol string
}

func (c countingAuth) Authenticate(ctx context.Context, remote, user, password string) error {
	err := c.a.Authenticate(ctx, remote, user, password)
	switch {
	case err == nil:
		metrics.Login(c.protocol, metrics.ResultOK)
	case errors.Is(err, auth.ErrFailed):
		metrics.Login(c.protocol, metrics.ResultFailed)
	case errors.Is(err, auth.ErrRateLimited):
		metrics.Login(c.protocol, metrics.ResultRateLimited)
	case ctx.Err() == nil:
		metrics.Login(c.protocol, metrics.ResultError)
	}
	return err
}

// authFor is the Authenticator as protocol's servers see it.
func (e *env) authFor(protocol string) countingAuth {
	return countingAuth{a: e.auth, protocol: protocol}
}

// countDelivery records one recipient's delivery through via.
func countDelivery(via string, res *delivery.Result, err error) {
	switch {
	case err == nil:
		metrics.Delivery(via, metrics.Delivered)
		if res != nil && res.ScriptErr != nil {
			metrics.SieveError()
		}
	case delivery.IsTemporary(err):
		metrics.Delivery(via, metrics.Deferred)
	default:
		metrics.Delivery(via, metrics.Rejected)
	}
}

// sharedDeliveries is the state database counter `mailmig deliver`
// adds to (labels "deliver/OUTCOME"): it runs once per message, so its
// counts must outlive it for serve's metrics.
const sharedDeliveries = "deliveries"

// sharedSieveErrors counts deliver's Sieve run-time errors (labels
// "deliver").
const sharedSieveErrors = "sieve_runtime_errors"

// countSharedSieveError counts a Sieve run-time error of `mailmig
// deliver` in the state database (best effort).
func countSharedSieveError(e *env) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.db.AddCounter(ctx, sharedSieveErrors, "deliver", 1); err != nil {
		e.log.Warn("count sieve error for the metrics", "err", err)
	}
}

// countSharedDelivery counts one `mailmig deliver` in the state database
// (best effort: a failure is logged, the delivery's outcome stands).
func countSharedDelivery(e *env, err error) {
	outcome := metrics.Delivered
	switch {
	case err == nil:
	case delivery.IsTemporary(err):
		outcome = metrics.Deferred
	default:
		outcome = metrics.Rejected
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if cerr := e.db.AddCounter(ctx, sharedDeliveries, "deliver/"+outcome, 1); cerr != nil {
		e.log.Warn("count delivery for the metrics", "err", cerr)
	}
}

// countingDeliverer is e.deliverer counted as via.
type countingDeliverer struct {
	d   *delivery.Deliverer
	via string
}

func (c countingDeliverer) Deliver(ctx context.Context, env delivery.Envelope, msg msgspool.Source) (*delivery.Result, error) {
	res, err := c.d.Deliver(ctx, env, msg)
	countDelivery(c.via, res, err)
	return res, err
}

// The control socket: one JSON request line, one JSON reply line.

// controlRequest is what an admin command asks the running server.
type controlRequest struct {
	Op       string `json:"op"` // who, kick, queue-flush, queue-delete
	User     string `json:"user,omitempty"`
	Protocol string `json:"protocol,omitempty"`
	ID       string `json:"id,omitempty"`
	All      bool   `json:"all,omitempty"`
}

// controlReply is the server's answer.
type controlReply struct {
	Error    string             `json:"error,omitempty"`
	Sessions []sessions.Session `json:"sessions,omitempty"`
	Count    int                `json:"count"`
	Text     string             `json:"text,omitempty"` // quota: the report
}

// startControl listens on [control] socket for the admin commands. The
// socket is 0666 so that users can ask for their own quota (op "quota",
// control_quota.go); every other operation is for root and serve's own
// user only (SO_PEERCRED).
func startControl(ctx context.Context, e *env) (func(context.Context) error, error) {
	path := e.cfg.Control.Socket
	if path == "" {
		return nil, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	// A socket left by a server that died is removed; a live one is not.
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another mailmig serve is running", path)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return nil, err
	}
	e.addListener("control", ln)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go e.serveControl(c.(*net.UnixConn))
		}
	}()
	return func(context.Context) error {
		err := ln.Close()
		<-done
		return err
	}, nil
}

// peerUID returns the uid of the connecting process (SO_PEERCRED) and
// whether it runs as root or as this server's user.
func peerUID(c *net.UnixConn) (uid uint32, admin, ok bool) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, false, false
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return 0, false, false
	}
	return cred.Uid, cred.Uid == 0 || int(cred.Uid) == os.Getuid(), true
}

func (e *env) serveControl(c *net.UnixConn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	enc := json.NewEncoder(c)
	uid, admin, ok := peerUID(c)
	if !ok {
		enc.Encode(controlReply{Error: "permission denied: no peer credentials"})
		return
	}
	line, err := bufio.NewReader(io.LimitReader(c, 4096)).ReadBytes('\n')
	if err != nil {
		return
	}
	var req controlRequest
	if err := json.Unmarshal(line, &req); err != nil {
		enc.Encode(controlReply{Error: "bad request: " + err.Error()})
		return
	}
	if req.Op == "quota" {
		enc.Encode(e.controlQuota(req, uid, admin))
		return
	}
	if !admin {
		enc.Encode(controlReply{Error: "permission denied: only root and the server's user may use the control socket (users may ask for their own quota)"})
		return
	}
	enc.Encode(e.control(req))
}

// control carries out one request.
func (e *env) control(req controlRequest) controlReply {
	switch req.Op {
	case "who":
		s := sessions.List(req.All)
		return controlReply{Sessions: s, Count: len(s)}
	case "kick":
		if req.User == "" {
			return controlReply{Error: "kick: no user"}
		}
		s := sessions.Kick(req.User, req.Protocol)
		e.log.Info("kicked by the postmaster", "user", req.User, "sessions", len(s))
		return controlReply{Sessions: s, Count: len(s)}
	case "queue-flush", "queue-delete":
		q, ok := e.outbound.(*outbound.Queue)
		if !ok || q == nil {
			return controlReply{Error: "no outgoing queue"}
		}
		if req.Op == "queue-delete" {
			if err := q.Delete(req.ID); err != nil {
				return controlReply{Error: err.Error()}
			}
			return controlReply{Count: 1}
		}
		n, err := q.Flush()
		if err != nil {
			return controlReply{Error: err.Error(), Count: n}
		}
		return controlReply{Count: n}
	}
	return controlReply{Error: fmt.Sprintf("unknown operation %q", req.Op)}
}

// errNotServing is returned by controlCall when no server answers.
var errNotServing = errors.New("mailmig serve is not running")

// controlCall sends req to the running server.
func controlCall(cfg *config.Config, req controlRequest) (*controlReply, error) {
	path := cfg.Control.Socket
	if path == "" {
		return nil, fmt.Errorf("%w: [control] socket is empty", errNotServing)
	}
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%w (control socket %s: %v)", errNotServing, path, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	b, _ := json.Marshal(req)
	if _, err := c.Write(append(b, '\n')); err != nil {
		return nil, err
	}
	var rep controlReply
	if err := json.NewDecoder(c).Decode(&rep); err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if rep.Error != "" {
		return &rep, errors.New(rep.Error)
	}
	return &rep, nil
}

// listenUnixCounted is listenUnix with the connections listed and
// counted as LMTP.
func listenUnixCounted(path, mode, group string) (net.Listener, error) {
	ln, err := listenUnix(path, mode, group)
	if err != nil {
		return nil, err
	}
	return sessions.Listen("lmtp", ln), nil
}

// listenTCPAs listens on addr with the connections listed and counted as
// protocol.
func listenTCPAs(protocol, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return sessions.Listen(protocol, ln), nil
}
