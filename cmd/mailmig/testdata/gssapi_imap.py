"""IMAP AUTHENTICATE GSSAPI with python3-gssapi and imaplib (the test's
real GSSAPI client). Usage: gssapi_imap.py HOST PORT CAFILE [AUTHZID];
CAFILE "-" speaks IMAP without TLS.
Prints the AUTHENTICATE result and the user name from a NAMESPACE-free
check, exits 0 on OK and 1 on NO."""
import imaplib
import ssl
import sys

import gssapi

host, port, cafile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
authz = sys.argv[4].encode() if len(sys.argv) > 4 else b""

ctx = gssapi.SecurityContext(
    name=gssapi.Name("imap@localhost", gssapi.NameType.hostbased_service),
    usage="initiate",
    flags=gssapi.RequirementFlag.mutual_authentication | gssapi.RequirementFlag.out_of_sequence_detection,
)


def step(challenge):
    if not ctx.complete:
        token = ctx.step(challenge or None)
        return token or b""
    layers = ctx.unwrap(challenge).message
    assert layers[0] & 1, "server offers no 'no security layer'"
    return ctx.wrap(bytes([1, 0, 0, 0]) + authz, False).message


if cafile == "-":
    m = imaplib.IMAP4(host, port)
else:
    m = imaplib.IMAP4_SSL(host, port, ssl_context=ssl.create_default_context(cafile=cafile))
assert "AUTH=GSSAPI" in m.capabilities, m.capabilities
try:
    typ, data = m.authenticate("GSSAPI", step)
except imaplib.IMAP4.error as e:
    print("NO", e)
    sys.exit(1)
print(typ, data)
typ, data = m.select("INBOX")
print("SELECT", typ, data)
m.logout()
