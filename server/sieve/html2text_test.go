package sieve

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"mailmig/server/sieve/pigeonholetest"
)

// htmlSamples exercise each rule of html2text.go.
var htmlSamples = []string{
	"<html><body><p>An <b>html</b>\n<i>keyword</i> part</p></body></html>\n",
	"a<b>b</b>c <br>d<p>e</p>f  g\n\nh\ti",
	"<a href=\"x>y\" title='it''s > here'>link text</a> after <img alt=\"a\\\"b>c\"> end",
	"before<!-- a comment with <b>tags</b> -- and dashes -->after<!---->x<!-- - -- >y-->z",
	"one<script type=\"text/javascript\">if (a < b) { x = \"</b>\"; }</script>two<STYLE>p { color: red }</style>three<scripts>four",
	"<![CDATA[raw <b>text</b> ] ]] kept]]>done",
	"AT&T rocks &amp; rolls &AMP; &Amp; &lt;tag&gt; caf&eacute; CAF&Eacute; &EACUTE; &nbsp;x &#233; &#xE9; &#XE9; &#x41;&#66; &bogus; &toolongentityname; a & b &;",
	"x < y and z > w, then <b >bold</b  > and < >",
	"text then an unterminated <b",
	"text then an entity at the end &amp",
	"text then a comment that never ends <!-- and so on",
	"spaces   <b> </b>  and\r\nCRLF\r\n<br/>\r\nlines",
	"<p>Sch&ouml;ne Gr&uuml;&szlig;e</p>",
	"it&apos;s &lang;x&rang; &euro;5 &Tab;tab &NewLine;nl &excl; &#0;zero &#x110000;big &#xD800;sur &#65 &#;",
	"<script\ttype=x>hidden</SCRIPT>shown<scriptx>also</scriptx> <!-->after empty comment<!--->x-->y",
	"<![cdata[lower]]> and <![CDATA[unterminated",
	"tail script <script>never closed",
	"<style>p{}</style",
	"x <b attr=\"a'b\" c='d\"e'>quoted</b> y",
}

// TestHTML4Entities: the table holds HTML 4.01's 252 names and apos.
func TestHTML4Entities(t *testing.T) {
	if n := len(html4Entities); n != 253 {
		t.Fatalf("%d entities, want 253", n)
	}
}

// htmlKeys are :contains keys for a text: its windows of 4 and 7 bytes
// that a Sieve string can hold, and those of the old conversion (spaces
// collapsed), which must now be judged the same way as pigeonhole does.
func htmlKeys(texts ...string) []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range texts {
		for _, n := range []int{4, 7} {
			for i := 0; i+n <= len(t); i++ {
				k := t[i : i+n]
				if strings.ContainsAny(k, "\r\n\"\\\x00") || !utf8Valid(k) || seen[k] {
					continue
				}
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	return out
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\x00") == s }

// TestHTMLTextLikePigeonhole: `body :text` on text/html finds exactly
// the strings pigeonhole's sieve-test finds, for many windows of each
// sample's text, and the whole text when it has no line ends.
func TestHTMLTextLikePigeonhole(t *testing.T) {
	for _, h := range htmlSamples {
		text := htmlToText(h)
		collapsed := strings.Join(strings.Fields(text), " ")
		keys := htmlKeys(text, collapsed, " "+collapsed+" ")
		msg := "Subject: html\nContent-Type: text/html; charset=utf-8\n\n" + h
		// pigeonhole allows 32 actions a run: 30 keys at a time.
		for start := 0; start < len(keys); start += 30 {
			batch := keys[start:min(start+30, len(keys))]
			var script strings.Builder
			script.WriteString(`require ["body", "fileinto", "copy"];` + "\n")
			for i, k := range batch {
				fmt.Fprintf(&script, "if body :text :contains \"%s\" { fileinto :copy \"k%d\"; }\n", k, i)
			}
			if start == 0 && !strings.ContainsAny(text, "\r\n\"\\\x00") {
				fmt.Fprintf(&script, "if body :text :is \"%s\" { fileinto :copy \"whole\"; }\n", text)
			}
			ref := pigeonholetest.Run(t, script.String(), msg)
			if ref.Failed {
				t.Fatalf("sieve-test failed:\n%s", ref.Output)
			}
			s, err := Compile([]byte(script.String()), Options{})
			if err != nil {
				t.Fatal(err)
			}
			o, err := s.Execute(context.Background(), &Input{EnvelopeFrom: "bob@example.org", EnvelopeTo: "alice@example.com", Msg: NewMessage([]byte(msg))})
			if err != nil {
				t.Fatal(err)
			}
			got := slices.Clone(o.Mailboxes)
			if o.KeepsMessage() {
				got = append(got, "INBOX")
			}
			slices.Sort(got)
			if !slices.Equal(got, ref.Folders) {
				var only []string
				for _, f := range got {
					if !slices.Contains(ref.Folders, f) {
						only = append(only, "mailmig:"+f)
					}
				}
				for _, f := range ref.Folders {
					if !slices.Contains(got, f) {
						only = append(only, "pigeonhole:"+f)
					}
				}
				for i := range only {
					var n int
					if _, err := fmt.Sscanf(only[i][strings.IndexByte(only[i], ':')+1:], "k%d", &n); err == nil {
						only[i] += fmt.Sprintf("=%q", batch[n])
					}
				}
				t.Errorf("%q → mailmig %q: the two differ on %v", h, text, only)
			}
		}
	}
}

// TestHTMLTextStreams: the conversion gives the same text however the
// input is cut.
func TestHTMLTextStreams(t *testing.T) {
	for _, h := range htmlSamples {
		want := htmlToText(h)
		for _, r := range []io.Reader{iotest.OneByteReader(strings.NewReader(h)), iotest.HalfReader(strings.NewReader(h))} {
			b, err := io.ReadAll(iotest.OneByteReader(newHTML2Text(r)))
			if err != nil || string(b) != want {
				t.Errorf("%q: streamed %q (%v), whole %q", h, b, err, want)
			}
		}
	}
}

func FuzzHTMLToText(f *testing.F) {
	for _, h := range htmlSamples {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, h string) {
		want := htmlToText(h)
		b, _ := io.ReadAll(newHTML2Text(iotest.OneByteReader(strings.NewReader(h))))
		if string(b) != want {
			t.Fatalf("%q: one byte at a time %q, whole %q", h, b, want)
		}
	})
}
