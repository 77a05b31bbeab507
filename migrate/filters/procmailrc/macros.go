package procmailrc

import "strings"

// The macros procmail substitutes in conditions (procmailrc(5),
// MISCELLANEOUS), as in procmail's source. The From_-line alternative
// (">?From ") of ^FROM_DAEMON and ^FROM_MAILER is split off: Sieve has no
// From_ line, its envelope test reads the same sender (FromLine).
const (
	macroTO_   = `(^((Original-)?(Resent-)?(To|Cc|Bcc)|(X-Envelope|Apparently(-Resent)?)-To):(.*[^-a-zA-Z0-9_.])?)`
	macroTO    = `(^((Original-)?(Resent-)?(To|Cc|Bcc)|(X-Envelope|Apparently(-Resent)?)-To):(.*[^a-zA-Z])?)`
	daemonWord = `Post(ma?(st(e?r)?|n)|office)|(send)?Mail(er)?|daemon|m(mdf|ajordomo)|n?uucp|LIST(SERV|proc)|NETSERV|o(wner|ps)|r(e(quest|sponse)|oot)|b(ounce|bs\.smtp)|echo|mirror|s(erv(ices?|er)|mtp(error)?|ystem)|A(dmin(istrator)?|MMGR|utoanswer)`
	mailerWord = `Post(ma(st(er)?|n)|office)|(send)?Mail(er)?|daemon|mmdf|n?uucp|ops|r(esponse|oot)|(bbs\.)?smtp(error)?|s(erv(ices?|er)|ystem)|A(dmin(istrator)?|MMGR)`
	// after the word, up to the end of the line
	wordTail = "(([^).!:a-z0-9][-_a-z0-9]*)?[%@>\t ][^<)]*(\\(.*\\).*)?)?$([^>]|$)"
)

// MacroFromDaemon and MacroFromMailer are the full substitutions.
var (
	MacroFromDaemon = `(^(Mailing-List:|Precedence:.*(junk|bulk|list)|To: Multiple recipients of |(((Resent-)?(From|Sender)|X-Envelope-From):|>?From )([^>]*[^(.%@a-z0-9])?(` + daemonWord + `)` + wordTail + `))`
	MacroFromMailer = `(^(((Resent-)?(From|Sender)|X-Envelope-From):|>?From )([^>]*[^(.%@a-z0-9])?(` + mailerWord + `)` + wordTail + `)`
)

// Macro is the result of expanding a condition's macros.
type Macro struct {
	// Header is the regex for the header fields.
	Header string
	// FromLine, when set, is a POSIX ERE for the envelope sender that
	// matches when the macro's From_-line alternative would: the sender
	// as procmail's From_ line shows it ("MAILER-DAEMON" for the null
	// sender is also matched by the converter separately).
	FromLine string
}

// ExpandMacros substitutes ^TO_, ^TO, ^FROM_DAEMON and ^FROM_MAILER in
// a condition's regex. ^FROM_DAEMON and ^FROM_MAILER are only supported
// as the whole condition (then FromLine is set); ok is false when they
// are combined with other text.
func ExpandMacros(re string) (m Macro, ok bool) {
	switch strings.TrimSpace(re) {
	case "^FROM_DAEMON":
		return Macro{
			Header:   `(^(Mailing-List:|Precedence:.*(junk|bulk|list)|To: Multiple recipients of |(((Resent-)?(From|Sender)|X-Envelope-From):)([^>]*[^(.%@a-z0-9])?(` + daemonWord + `)` + wordTail + `))`,
			FromLine: fromLine(daemonWord),
		}, true
	case "^FROM_MAILER":
		return Macro{
			Header:   `(^(((Resent-)?(From|Sender)|X-Envelope-From):)([^>]*[^(.%@a-z0-9])?(` + mailerWord + `)` + wordTail + `)`,
			FromLine: fromLine(mailerWord),
		}, true
	}
	if strings.Contains(re, "^FROM_DAEMON") || strings.Contains(re, "^FROM_MAILER") {
		return Macro{}, false
	}
	re = strings.ReplaceAll(re, "^TO_", macroTO_)
	re = strings.ReplaceAll(re, "^TO", macroTO)
	return Macro{Header: re}, true
}

// fromLine is the From_ alternative rewritten for the sender alone: the
// From_ line is "From SENDER DATE", and the date (letters, digits, ':'
// and blanks) satisfies the tail after the word by itself.
func fromLine(word string) string {
	return "^([^>]*[^(.%@a-z0-9])?(" + word + ")(([^).!:a-z0-9][-_a-z0-9]*)?([%@>\t ][^<)]*(\\(.*\\).*)?)?)?$"
}
