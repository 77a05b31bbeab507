/*
 * cclient-dump: print every message of a mailbox as UW-IMAP's c-client
 * reads it (the library uw-imapd and mailutil use), for the differential
 * tests of migrate/cclienttest. Written for mailmig; links Debian's
 * libc-client2007e.
 *
 * Usage: cclient-dump HOME MAILBOX [readonly]
 *        cclient-dump HOME MAILBOX setflag SEQUENCE FLAGS
 *        cclient-dump HOME MAILBOX expunge
 * The second form sets flags and keywords (c-client creates keywords the
 * folder lacks) on the messages of SEQUENCE, e.g. "1,3:4" "\\Seen Work",
 * and prints nothing.
 * HOME becomes c-client's home directory; MAILBOX is a c-client name
 * (relative to HOME, or "#driver.mbx/..."). The mailbox is opened
 * read-write, as uw-imapd opened a user's folder (c-client may rewrite
 * it on close: give it a copy). Output, per folder:
 *   FOLDER <driver> <uidvalidity> <uidnext> <messages>
 *   KEYWORD <name>            (one per keyword defined in the folder)
 *   MSG <uid> <flags> <unix time> <zone> <bytes>\n<bytes>\n
 * flags are letters: S seen, A answered, F flagged, D deleted, T draft,
 * R recent, then "+name" for each keyword; "-" for none. The bytes are
 * header + text as c-client serves them (CRLF). Log messages go to stderr
 * prefixed "LOG". Exit 1 if the mailbox cannot be opened.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "c-client.h"

static char flagbuf[65536];

int main (int argc, char *argv[])
{
  MAILSTREAM *stream;
  unsigned long i, j, hlen, tlen;
  char *h, *t;
  if (argc != 3 && !(argc == 4 && (!strcmp (argv[3], "readonly") || !strcmp (argv[3], "expunge"))) &&
      !(argc == 6 && !strcmp (argv[3], "setflag"))) {
    fprintf (stderr, "usage: cclient-dump HOME MAILBOX [readonly | expunge | setflag SEQUENCE FLAGS]\n");
    return 2;
  }
#include "linkage.c"
  env_init ("mailmig", argv[1]);
  /* read-write, as uw-imapd opened a user's folder (c-client creates
   * keywords only then); the mailbox is a throw-away copy */
  stream = mail_open (NIL, argv[2], (argc == 4 && !strcmp (argv[3], "readonly")) ? OP_READONLY : NIL);
  if (!stream) {
    fprintf (stderr, "cannot open %s\n", argv[2]);
    return 1;
  }
  if (argc == 6) {
    mail_setflag (stream, argv[4], argv[5]);
    mail_close (stream);
    return 0;
  }
  if (argc == 4 && !strcmp (argv[3], "expunge")) {
    mail_expunge (stream);
    mail_close (stream);
    return 0;
  }
  printf ("FOLDER %s %lu %lu %lu\n", stream->dtb ? stream->dtb->name : "?",
	  stream->uid_validity, stream->uid_last + 1, stream->nmsgs);
  for (i = 0; i < NUSERFLAGS && stream->user_flags[i]; i++)
    printf ("KEYWORD %s\n", stream->user_flags[i]);
  if (stream->nmsgs) mail_fetch_flags (stream, "1:*", NIL);
  for (i = 1; i <= stream->nmsgs; i++) {
    MESSAGECACHE *elt = mail_elt (stream, i);
    unsigned long uf;
    char *p = flagbuf;
    h = mail_fetch_header (stream, i, NIL, NIL, &hlen, FT_PEEK);
    /* copy: the next fetch may reuse c-client's buffer */
    h = memcpy (fs_get (hlen + 1), h, hlen);
    t = mail_fetch_text (stream, i, NIL, &tlen, FT_PEEK);
    if (elt->seen) *p++ = 'S';
    if (elt->answered) *p++ = 'A';
    if (elt->flagged) *p++ = 'F';
    if (elt->deleted) *p++ = 'D';
    if (elt->draft) *p++ = 'T';
    if (elt->recent) *p++ = 'R';
    for (uf = elt->user_flags, j = 0; uf; uf >>= 1, j++)
      if ((uf & 1) && stream->user_flags[j] &&
	  (p - flagbuf) + strlen (stream->user_flags[j]) + 2 < sizeof (flagbuf)) {
	*p++ = '+';
	strcpy (p, stream->user_flags[j]);
	p += strlen (p);
      }
    if (p == flagbuf) *p++ = '-';
    *p = '\0';
    printf ("MSG %lu %s %lu %c%02u%02u %lu\n", mail_uid (stream, i), flagbuf,
	    (unsigned long) mail_longdate (elt), elt->zoccident ? '-' : '+',
	    elt->zhours, elt->zminutes, hlen + tlen);
    fwrite (h, 1, hlen, stdout);
    fwrite (t, 1, tlen, stdout);
    putchar ('\n');
    fs_give ((void **) &h);
  }
  mail_close (stream);
  return 0;
}

/* c-client calls these back; a dump needs only the log. */
void mm_searched (MAILSTREAM *s, unsigned long n) {}
void mm_exists (MAILSTREAM *s, unsigned long n) {}
void mm_expunged (MAILSTREAM *s, unsigned long n) {}
void mm_flags (MAILSTREAM *s, unsigned long n) {}
void mm_notify (MAILSTREAM *s, char *str, long errflg) { mm_log (str, errflg); }
void mm_list (MAILSTREAM *s, int d, char *m, long a) {}
void mm_lsub (MAILSTREAM *s, int d, char *m, long a) {}
void mm_status (MAILSTREAM *s, char *m, MAILSTATUS *st) {}
void mm_log (char *str, long errflg) { fprintf (stderr, "LOG %ld %s\n", errflg, str); }
void mm_dlog (char *str) { fprintf (stderr, "DLOG %s\n", str); }
void mm_login (NETMBX *mb, char *user, char *pwd, long trial) { *user = *pwd = '\0'; }
void mm_critical (MAILSTREAM *s) {}
void mm_nocritical (MAILSTREAM *s) {}
long mm_diskerror (MAILSTREAM *s, long errcode, long serious) { return 1; }
void mm_fatal (char *str) { fprintf (stderr, "FATAL %s\n", str); }
