#!/usr/bin/env python3
"""Deliver messages over LMTP with Python's smtplib and report every
recipient's reply as JSON (one object per message: rcpt -> [code, text]).

Usage: lmtp_send.py SPEC.json
SPEC: {"addr": "127.0.0.1:PORT" or "/path/to/socket",
       "messages": [{"from": "a@b", "rcpts": ["c@d"], "file": "msg.eml"}]}

smtplib.LMTP reads only the first reply after DATA, so with several
recipients the remaining per-recipient replies (RFC 2033 section 4.2) are
read here with getreply().
"""
import json
import smtplib
import sys


def deliver(conn, frm, rcpts, data):
    out = {}
    code, text = conn.mail(frm)
    if code != 250:
        for r in rcpts:
            out[r] = [code, text.decode()]
        conn.rset()
        return out
    accepted = []
    for r in rcpts:
        code, text = conn.rcpt(r)
        if code in (250, 251):
            accepted.append(r)
        else:
            out[r] = [code, text.decode()]
    if not accepted:
        conn.rset()
        return out
    code, text = conn.data(data)
    out[accepted[0]] = [code, text.decode()]
    for r in accepted[1:]:
        code, text = conn.getreply()
        out[r] = [code, text.decode()]
    return out


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    addr = spec["addr"]
    if addr.startswith("/"):
        conn = smtplib.LMTP(addr, timeout=30)
    else:
        host, port = addr.rsplit(":", 1)
        conn = smtplib.LMTP(host, int(port), timeout=30)
    conn.ehlo("python-lmtp.test")
    results = []
    for m in spec["messages"]:
        with open(m["file"], "rb") as f:
            data = f.read()
        results.append(deliver(conn, m["from"], m["rcpts"], data))
    conn.quit()
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
