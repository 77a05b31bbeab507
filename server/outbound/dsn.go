package outbound

import (
	"bufio"
	"bytes"
	"fmt"
	"mime/multipart"
	"net/textproto"
	"strings"
	"time"
)

// buildDSN renders a delivery status notification (RFC 3464) for the
// failed recipients of it as a multipart/report (RFC 6522): a text part
// saying which server refused and why, the machine-readable
// message/delivery-status part, and the original header
// (text/rfc822-headers).
func buildDSN(hostname string, now time.Time, it *item, original []byte) []byte {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	boundary := mw.Boundary()
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	hdr("From", fmt.Sprintf("Mail Delivery System <MAILER-DAEMON@%s>", hostname))
	hdr("To", "<"+it.From+">")
	subject := "Undelivered Mail Returned to Sender"
	hdr("Subject", subject)
	hdr("Date", now.Format(time.RFC1123Z))
	hdr("Message-ID", fmt.Sprintf("<dsn.%s@%s>", it.ID, hostname))
	hdr("Auto-Submitted", "auto-replied")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", fmt.Sprintf("multipart/report; report-type=delivery-status;\r\n\tboundary=%q", boundary))
	b.WriteString("\r\nThis is a MIME-encapsulated delivery status notification.\r\n")

	// Human-readable part.
	tp, _ := mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":        {"text/plain; charset=utf-8"},
		"Content-Description": {"Notification"},
	})
	var t strings.Builder
	fmt.Fprintf(&t, "This is the mail system at %s.\r\n\r\n", hostname)
	fmt.Fprintf(&t, "Your message could not be delivered to one or more recipients.\r\n")
	if subj := originalSubject(original); subj != "" {
		fmt.Fprintf(&t, "Subject of your message: %s\r\n", subj)
	}
	fmt.Fprintf(&t, "Queued at: %s\r\n\r\n", it.Created.UTC().Format(time.RFC1123Z))
	for _, f := range it.Failed {
		fmt.Fprintf(&t, "<%s>:\r\n", f.Rcpt)
		switch {
		case f.Remote != "" && f.Code != 0:
			fmt.Fprintf(&t, "    %s refused the message: %s\r\n", f.Remote, formatReply(f))
		case f.Remote != "":
			fmt.Fprintf(&t, "    %s: %s\r\n", f.Remote, f.Text)
		default:
			fmt.Fprintf(&t, "    %s\r\n", f.Text)
		}
		if f.Expired {
			fmt.Fprintf(&t, "    Delivery was retried from %s until %s and then given up.\r\n",
				it.Created.UTC().Format(time.RFC1123Z), now.UTC().Format(time.RFC1123Z))
		}
		t.WriteString("\r\n")
	}
	tp.Write([]byte(t.String()))

	// RFC 3464 §2.
	dp, _ := mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":        {"message/delivery-status"},
		"Content-Description": {"Delivery report"},
	})
	var d strings.Builder
	fmt.Fprintf(&d, "Reporting-MTA: dns; %s\r\n", hostname)
	fmt.Fprintf(&d, "X-Mailmig-Queue-ID: %s\r\n", it.ID)
	fmt.Fprintf(&d, "Arrival-Date: %s\r\n", it.Created.Format(time.RFC1123Z))
	for _, f := range it.Failed {
		d.WriteString("\r\n")
		fmt.Fprintf(&d, "Final-Recipient: rfc822; %s\r\n", f.Rcpt)
		d.WriteString("Action: failed\r\n")
		fmt.Fprintf(&d, "Status: %s\r\n", dsnStatus(f))
		if f.Remote != "" {
			host := f.Remote
			if i := strings.LastIndexByte(host, ':'); i > 0 && !strings.Contains(host[i:], "]") {
				host = host[:i]
			}
			fmt.Fprintf(&d, "Remote-MTA: dns; %s\r\n", strings.Trim(host, "[]"))
		}
		if f.Code != 0 {
			fmt.Fprintf(&d, "Diagnostic-Code: smtp; %s\r\n", oneLine(formatReply(f)))
		} else {
			fmt.Fprintf(&d, "Diagnostic-Code: x-mailmig; %s\r\n", oneLine(f.Text))
		}
		fmt.Fprintf(&d, "Last-Attempt-Date: %s\r\n", f.At.Format(time.RFC1123Z))
		if f.Expired {
			fmt.Fprintf(&d, "Will-Retry-Until: %s\r\n", now.Format(time.RFC1123Z))
		}
	}
	dp.Write([]byte(d.String()))

	// The original header, so the sender can tell which message it was.
	hp, _ := mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":        {"text/rfc822-headers"},
		"Content-Description": {"Undelivered message headers"},
	})
	hp.Write(headerOf(original))
	mw.Close()
	return b.Bytes()
}

// dsnStatus is the RFC 3463 status for a failure.
func dsnStatus(f failure) string {
	switch {
	case f.Enhanced != "" && f.permanent():
		return f.Enhanced
	case f.permanent():
		return "5.0.0"
	case f.Expired && f.Code == 0:
		return "4.4.1" // no answer from host
	case f.Expired:
		return "4.4.7" // delivery time expired
	default:
		return "5.0.0"
	}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// headerOf returns the header section of msg (up to the blank line).
func headerOf(msg []byte) []byte {
	for _, sep := range [][]byte{[]byte("\r\n\r\n"), []byte("\n\n")} {
		if i := bytes.Index(msg, sep); i >= 0 {
			return msg[:i+len(sep)/2]
		}
	}
	return msg
}

func originalSubject(msg []byte) string {
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(headerOf(msg))))
	h, _ := r.ReadMIMEHeader()
	s := oneLine(h.Get("Subject"))
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
