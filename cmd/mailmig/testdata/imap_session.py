#!/usr/bin/env python3
"""Drive mailmig's IMAP server with python3's imaplib, as a mail client
would, and print what the server answered as JSON for imap_test.go.

usage: imap_session.py HOST PORT USER PASSWORD OTHER_USER OTHER_PASSWORD
"""
import imaplib
import json
import re
import socket
import sys
import time

host, port, user, password, other, other_pw = sys.argv[1:7]
port = int(port)
out = {}


def ok(res, what):
    typ, data = res
    if typ != "OK":
        raise SystemExit("%s failed: %s %r" % (what, typ, data))
    return data


def text(data):
    return [d.decode() if isinstance(d, bytes) else d for d in data if d is not None]


M = imaplib.IMAP4(host, port, timeout=20)
out["capabilities"] = list(M.capabilities)
ok(M.login(user, password), "login")

ok(M.create("Work"), "create")
ok(M.create("Archive/2009"), "create nested")
out["list"] = text(ok(M.list(), "list"))

msg1 = b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: hello imaplib\r\nDate: Wed, 07 Oct 2009 12:00:00 +0200\r\n\r\nfirst body\r\n"
msg2 = b"From: carol@example.org\r\nSubject: second\r\n\r\nsecond body\r\n"
out["append1"] = text(ok(M.append("INBOX", None, imaplib.Time2Internaldate(1254916800), msg1), "append"))
out["append2"] = text(ok(M.append("INBOX", "(\\Flagged)", None, msg2), "append"))

out["select"] = text(ok(M.select("INBOX"), "select"))
typ, data = M.fetch("1", "(UID FLAGS RFC822.SIZE BODY.PEEK[])")
ok((typ, data), "fetch")
out["fetch1_meta"] = data[0][0].decode()
out["fetch1_body"] = data[0][1].decode()
out["fetch_envelope"] = text(ok(M.fetch("1:2", "(ENVELOPE)"), "fetch envelope"))
out["store"] = text(ok(M.store("1", "+FLAGS", "(\\Seen $Work)"), "store"))
out["search_seen"] = text(ok(M.search(None, "SEEN"), "search"))
out["search_from"] = text(ok(M.uid("SEARCH", None, "FROM", "carol"), "uid search"))

# MOVE (RFC 6851) through the generic command interface.
typ, data = M._simple_command("MOVE", "2", "Work")
ok((typ, data), "move")
out["move"] = text(M.untagged_responses.pop("OK", []))
out["after_move"] = text(ok(M.select("INBOX"), "reselect"))

ok(M.store("1", "+FLAGS", "(\\Deleted)"), "store deleted")
out["expunge"] = text(ok(M.expunge(), "expunge"))

out["getquotaroot"] = [text(x) for x in ok(M.getquotaroot("INBOX"), "getquotaroot")]
ok(M.setacl("Work", other, "lrs"), "setacl")
out["getacl"] = text(ok(M.getacl("Work"), "getacl"))
out["myrights"] = text(ok(M.myrights("Work"), "myrights"))

# The other user sees the grant under the shared namespace.
O = imaplib.IMAP4(host, port, timeout=20)
ok(O.login(other, other_pw), "login other")
out["other_list"] = text(ok(O.list('""', "shared/*"), "list shared"))
out["other_select"] = text(ok(O.select('"shared/%s/Work"' % user, readonly=True), "select shared"))
out["other_myrights"] = text(ok(O.myrights('"shared/%s/Work"' % user), "myrights shared"))
O.logout()

# IDLE (RFC 2177) by hand: python 3.11's imaplib has no idle().
ok(M.select("INBOX"), "select for idle")
tag = M._new_tag()
M.send(tag + b" IDLE\r\n")
cont = M.readline()
if not cont.startswith(b"+"):
    raise SystemExit("IDLE: no continuation: %r" % cont)
P = imaplib.IMAP4(host, port, timeout=20)
ok(P.login(user, password), "login appender")
start = time.monotonic()
ok(P.append("INBOX", None, None, b"Subject: during idle\r\n\r\nidle body\r\n"), "append during idle")
M.sock.settimeout(5)
seen = None
while seen is None:
    line = M.readline()
    if not line:
        raise SystemExit("IDLE: connection closed")
    if re.match(rb"\* \d+ EXISTS", line):
        seen = line.decode().strip()
out["idle_exists"] = seen
out["idle_latency"] = time.monotonic() - start
M.send(b"DONE\r\n")
# Untagged updates (the new message's "* 1 RECENT", RFC 3501 §7.3.2) may
# come before the tagged reply.
done = M.readline()
while done.startswith(b"* "):
    done = M.readline()
out["idle_done"] = done.decode().strip()
P.logout()

out["status"] = text(ok(M.status("INBOX", "(MESSAGES UIDNEXT UNSEEN)"), "status"))
M.logout()
print(json.dumps(out))
