package imap

// Quota (RFC 9208): each user has one quota root, "", over the whole
// Maildir++ tree, with the STORAGE (in KiB) and MESSAGE resources. Usage
// comes from the store's maildirsize; limits from Options.QuotaFor.

// quotaLimits returns the user's limits in bytes and messages (0 = none).
func (s *Server) quotaLimits(user string) (bytes, messages int64) {
	if s.opts.QuotaFor == nil {
		return DefaultQuotaBytes, 0
	}
	return s.opts.QuotaFor(user)
}

// overQuota tells whether adding size bytes to m's owner would exceed the
// owner's quota. The store enforces it again at Append; this check only
// spares the client sending a message that will be refused.
func (c *conn) overQuota(m *mbox, size int64) (bool, error) {
	qb, qm := c.srv.quotaLimits(m.owner)
	if qb <= 0 && qm <= 0 {
		return false, nil
	}
	used, msgs, err := m.store.Usage()
	if err != nil {
		return false, err
	}
	return (qb > 0 && used+size > qb) || (qm > 0 && msgs+1 > qm), nil
}

// writeQuota writes "* QUOTA root (...)" for the user's own root.
func (c *conn) writeQuota() error {
	used, msgs, err := c.store.Usage()
	if err != nil {
		return c.storeErr("GETQUOTA", nil, err)
	}
	qb, qm := c.srv.quotaLimits(c.user)
	c.w.raw(`* QUOTA "" (`)
	sep := ""
	if qb > 0 {
		c.w.raw("STORAGE ").num64((used + 1023) / 1024).sp().num64(qb / 1024)
		sep = " "
	}
	if qm > 0 {
		c.w.raw(sep).raw("MESSAGE ").num64(msgs).sp().num64(qm)
	}
	c.w.raw(")").crlf()
	return nil
}

// RFC 9208 §4.3 GETQUOTAROOT.
func (c *conn) cmdGetQuotaRoot(tag string, p *parser, _ bool) error {
	m, err := c.onlyMailboxArg(p)
	if err != nil {
		return err
	}
	defer m.release()
	if err := c.need(m, 'l'); err != nil {
		return err
	}
	// In the user's own namespace every name is under the user's root,
	// whether the mailbox exists yet or not (as dovecot answers: a client
	// may ask before CREATE or APPEND); another user's must exist.
	if m.owner != c.user {
		if _, err := c.folderDir(m); err != nil {
			return c.storeErr("GETQUOTAROOT", m, err)
		}
	}
	c.w.raw("* QUOTAROOT ").mailbox(m.name)
	if m.owner != c.user {
		// Another user's quota is not this user's business.
		c.w.crlf()
		return c.ok(tag, "", "GETQUOTAROOT completed", true)
	}
	c.w.raw(` ""`).crlf()
	if err := c.writeQuota(); err != nil {
		return err
	}
	return c.ok(tag, "", "GETQUOTAROOT completed", true)
}

// RFC 9208 §4.2 GETQUOTA.
func (c *conn) cmdGetQuota(tag string, p *parser, _ bool) error {
	if err := p.sp(); err != nil {
		return err
	}
	root, err := p.astring()
	if err != nil {
		return err
	}
	if err := p.end(); err != nil {
		return err
	}
	if root != "" {
		// Plain NO (RFC 9208 §4.2), as dovecot: NONEXISTENT (RFC 5530)
		// is about mailboxes, and a quota root is none.
		return errNo("", "no such quota root")
	}
	if err := c.writeQuota(); err != nil {
		return err
	}
	return c.ok(tag, "", "GETQUOTA completed", true)
}

// RFC 9208 §4.1 SETQUOTA: limits are the postmaster's (config), not the
// user's: "NO - can't set that data", without a response code as dovecot
// answers.
func (c *conn) cmdSetQuota(tag string, p *parser, _ bool) error {
	return errNo("", "quota limits are set by the administrator")
}
