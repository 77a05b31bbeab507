package main

import (
	"net"

	"mailmig/server/imap"
	"mailmig/server/listen"
)

// connLimits are one protocol's connection counters ([connections]).
type connLimits struct {
	conns  *listen.Counter
	userIP *listen.UserLimit
}

// protoLimits returns the counters of proto, shared by its listeners.
func (e *env) protoLimits(proto string) *connLimits {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conns == nil {
		e.conns = map[string]*connLimits{}
	}
	cl := e.conns[proto]
	if cl == nil {
		k := e.cfg.Connections
		cl = &connLimits{
			conns:  &listen.Counter{Limits: listen.Limits{Total: k.MaxTotal, PerIP: k.MaxPerIP}},
			userIP: &listen.UserLimit{Max: k.MaxPerUserIP},
		}
		e.conns[proto] = cl
	}
	return cl
}

// limitListener applies [connections] max_total and max_per_ip of proto
// to ln. Refused connections get refusal (the protocol's own "too many
// connections" line) unless the listener speaks TLS from the first byte.
func (e *env) limitListener(proto string, ln net.Listener, implicitTLS bool, refusal string) net.Listener {
	var r []byte
	if !implicitTLS {
		r = []byte(refusal)
	}
	return listen.Limit(ln, e.protoLimits(proto).conns, r)
}

// imapLimits are the IMAP server's [connections] bounds.
func (e *env) imapLimits() imap.ConnLimits {
	k := e.cfg.Connections
	return imap.ConnLimits{
		PreAuthTimeout:  k.PreAuthTimeout.D(),
		CommandTimeout:  k.CommandTimeout.D(),
		WriteTimeout:    k.WriteTimeout.D(),
		CommandLiterals: int64(k.CommandLiterals),
		UserIP:          e.protoLimits("imap").userIP,
	}
}
