package web

import (
	"crypto/sha256"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Thunderbird autoconfig, version 1.1 of the clientConfig format (the
// format of Mozilla's ISPDB): fetched from
// https://autoconfig.DOMAIN/mail/config-v1.1.xml or
// https://DOMAIN/.well-known/autoconfig/mail/config-v1.1.xml.
type clientConfig struct {
	XMLName  xml.Name `xml:"clientConfig"`
	Version  string   `xml:"version,attr"`
	Provider struct {
		ID        string         `xml:"id,attr"`
		Domain    string         `xml:"domain"`
		Display   string         `xml:"displayName"`
		Short     string         `xml:"displayShortName"`
		Incoming  []serverConfig `xml:"incomingServer"`
		Outgoing  []serverConfig `xml:"outgoingServer"`
		Documents []struct {
			URL   string `xml:"url,attr"`
			Descr string `xml:"descr"`
		} `xml:"documentation"`
	} `xml:"emailProvider"`
}

type serverConfig struct {
	Type     string `xml:"type,attr"`
	Hostname string `xml:"hostname"`
	Port     int    `xml:"port"`
	Socket   string `xml:"socketType"`
	Auth     string `xml:"authentication"`
	Username string `xml:"username"`
}

func (s *Server) autoconfig(w http.ResponseWriter, r *http.Request) {
	c := s.opts.Client
	var cc clientConfig
	cc.Version = "1.1"
	p := &cc.Provider
	p.ID, p.Domain, p.Display, p.Short = c.Domain, c.Domain, c.DisplayName, c.Domain
	// The local part is the login (users log in with their user name).
	const user = "%EMAILLOCALPART%"
	if c.IMAPSPort > 0 {
		p.Incoming = append(p.Incoming, serverConfig{"imap", c.IMAPHost, c.IMAPSPort, "SSL", "password-cleartext", user})
	}
	if c.IMAPPort > 0 {
		p.Incoming = append(p.Incoming, serverConfig{"imap", c.IMAPHost, c.IMAPPort, "STARTTLS", "password-cleartext", user})
	}
	if c.SubmissionsPort > 0 {
		p.Outgoing = append(p.Outgoing, serverConfig{"smtp", c.SubmissionHost, c.SubmissionsPort, "SSL", "password-cleartext", user})
	}
	if c.SubmissionPort > 0 {
		p.Outgoing = append(p.Outgoing, serverConfig{"smtp", c.SubmissionHost, c.SubmissionPort, "STARTTLS", "password-cleartext", user})
	}
	if c.WebHost != "" {
		p.Documents = append(p.Documents, struct {
			URL   string `xml:"url,attr"`
			Descr string `xml:"descr"`
		}{"https://" + c.WebHost + "/setup", "Setting up your mail client"})
	}
	writeXML(w, "application/xml", cc)
}

// Microsoft Autodiscover, the plain-old-XML variant Outlook and many
// other clients POST to /autodiscover/autodiscover.xml.
type autodiscoverRequest struct {
	Request struct {
		Email  string `xml:"EMailAddress"`
		Schema string `xml:"AcceptableResponseSchema"`
	} `xml:"Request"`
}

type adProtocol struct {
	Type         string `xml:"Type"`
	Server       string `xml:"Server"`
	Port         int    `xml:"Port"`
	LoginName    string `xml:"LoginName"`
	DomainReq    string `xml:"DomainRequired"`
	SPA          string `xml:"SPA"`
	SSL          string `xml:"SSL"`
	Encryption   string `xml:"Encryption,omitempty"`
	AuthRequired string `xml:"AuthRequired"`
}

type autodiscoverResponse struct {
	XMLName  xml.Name `xml:"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006 Autodiscover"`
	Response struct {
		XMLName xml.Name `xml:"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a Response"`
		Account struct {
			Type     string       `xml:"AccountType"`
			Action   string       `xml:"Action"`
			Protocol []adProtocol `xml:"Protocol"`
		} `xml:"Account"`
	}
}

func (s *Server) autodiscover(w http.ResponseWriter, r *http.Request) {
	var req autodiscoverRequest
	if err := xml.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		http.Error(w, "bad autodiscover request", http.StatusBadRequest)
		return
	}
	local, domain, ok := strings.Cut(strings.TrimSpace(req.Request.Email), "@")
	if !ok || local == "" || !strings.EqualFold(domain, s.opts.Client.Domain) {
		http.Error(w, "unknown domain", http.StatusNotFound)
		return
	}
	c := s.opts.Client
	var resp autodiscoverResponse
	a := &resp.Response.Account
	a.Type, a.Action = "email", "settings"
	if c.IMAPSPort > 0 {
		a.Protocol = append(a.Protocol, adProtocol{"IMAP", c.IMAPHost, c.IMAPSPort, local, "off", "off", "on", "", "on"})
	} else if c.IMAPPort > 0 {
		a.Protocol = append(a.Protocol, adProtocol{"IMAP", c.IMAPHost, c.IMAPPort, local, "off", "off", "on", "TLS", "on"})
	}
	if c.SubmissionsPort > 0 {
		a.Protocol = append(a.Protocol, adProtocol{"SMTP", c.SubmissionHost, c.SubmissionsPort, local, "off", "off", "on", "", "on"})
	} else if c.SubmissionPort > 0 {
		a.Protocol = append(a.Protocol, adProtocol{"SMTP", c.SubmissionHost, c.SubmissionPort, local, "off", "off", "on", "TLS", "on"})
	}
	writeXML(w, "application/xml", resp)
}

func writeXML(w http.ResponseWriter, ctype string, v any) {
	b, err := xml.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ctype+"; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	io.WriteString(w, xml.Header)
	w.Write(b)
	io.WriteString(w, "\n")
}

// mobileconfig serves an Apple configuration profile with one IMAP
// account for the logged-in user (the profile names the user's address,
// so it needs a login).
func (s *Server) mobileconfig(w http.ResponseWriter, r *http.Request) {
	sess := s.sessions.get(r)
	if sess == nil {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	c := s.opts.Client
	user := sess.user
	addr := user + "@" + c.Domain
	uuid := func(kind string) string {
		h := sha256.Sum256([]byte("mailmig/" + kind + "/" + c.Domain + "/" + user))
		return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
	}
	imapPort, imapSSL := c.IMAPSPort, true
	if imapPort == 0 {
		imapPort, imapSSL = c.IMAPPort, false
	}
	smtpPort, smtpSSL := c.SubmissionsPort, true
	if smtpPort == 0 {
		smtpPort, smtpSSL = c.SubmissionPort, false
	}
	id := reverseDomain(c.Domain) + ".mailmig"
	var b strings.Builder
	b.WriteString(xml.Header)
	b.WriteString(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">` + "\n")
	b.WriteString("<plist version=\"1.0\">\n<dict>\n")
	plist(&b, "PayloadContent", nil)
	b.WriteString("<array>\n<dict>\n")
	for _, kv := range [][2]any{
		{"EmailAccountDescription", c.DisplayName},
		{"EmailAccountName", user},
		{"EmailAccountType", "EmailTypeIMAP"},
		{"EmailAddress", addr},
		{"IncomingMailServerAuthentication", "EmailAuthPassword"},
		{"IncomingMailServerHostName", c.IMAPHost},
		{"IncomingMailServerPortNumber", imapPort},
		{"IncomingMailServerUseSSL", imapSSL},
		{"IncomingMailServerUsername", user},
		{"OutgoingMailServerAuthentication", "EmailAuthPassword"},
		{"OutgoingMailServerHostName", c.SubmissionHost},
		{"OutgoingMailServerPortNumber", smtpPort},
		{"OutgoingMailServerUseSSL", smtpSSL},
		{"OutgoingMailServerUsername", user},
		{"OutgoingPasswordSameAsIncomingPassword", true},
		{"PayloadDisplayName", c.DisplayName + " mail"},
		{"PayloadIdentifier", id + ".account." + user},
		{"PayloadType", "com.apple.mail.managed"},
		{"PayloadUUID", uuid("account")},
		{"PayloadVersion", 1},
	} {
		plist(&b, kv[0].(string), kv[1])
	}
	b.WriteString("</dict>\n</array>\n")
	for _, kv := range [][2]any{
		{"PayloadDisplayName", c.DisplayName + " mail (" + addr + ")"},
		{"PayloadIdentifier", id + "." + user},
		{"PayloadRemovalDisallowed", false},
		{"PayloadType", "Configuration"},
		{"PayloadUUID", uuid("profile")},
		{"PayloadVersion", 1},
	} {
		plist(&b, kv[0].(string), kv[1])
	}
	b.WriteString("</dict>\n</plist>\n")
	w.Header().Set("Content-Type", "application/x-apple-aspen-config")
	w.Header().Set("Content-Disposition", `attachment; filename="`+c.Domain+`.mobileconfig"`)
	io.WriteString(w, b.String())
}

func plist(b *strings.Builder, key string, v any) {
	b.WriteString("<key>")
	xml.EscapeText(b, []byte(key))
	b.WriteString("</key>\n")
	switch v := v.(type) {
	case nil:
	case string:
		b.WriteString("<string>")
		xml.EscapeText(b, []byte(v))
		b.WriteString("</string>\n")
	case int:
		fmt.Fprintf(b, "<integer>%d</integer>\n", v)
	case bool:
		if v {
			b.WriteString("<true/>\n")
		} else {
			b.WriteString("<false/>\n")
		}
	}
}

func reverseDomain(d string) string {
	parts := strings.Split(d, ".")
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, ".")
}

func (s *Server) caChain(w http.ResponseWriter, r *http.Request) {
	if len(s.opts.CAChain) == 0 {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `attachment; filename="`+s.opts.Client.Domain+`-ca.pem"`)
	w.Write(s.opts.CAChain)
}

// DNSRecords are the zone lines that let clients find the servers by
// themselves: RFC 6186 SRV records (RFC 8314 for submissions), RFC 5804
// §1.8 for ManageSieve, and the host names Thunderbird's autoconfig and
// Autodiscover look up.
func DNSRecords(c Client) []string {
	d := strings.TrimSuffix(c.Domain, ".") + "."
	host := func(h string) string { return strings.TrimSuffix(h, ".") + "." }
	var out []string
	srv := func(service string, port int, h string) {
		if port > 0 {
			out = append(out, fmt.Sprintf("_%s._tcp.%s\t3600 IN SRV 0 1 %d %s", service, d, port, host(h)))
		}
	}
	srv("imaps", c.IMAPSPort, c.IMAPHost)
	srv("imap", c.IMAPPort, c.IMAPHost)
	srv("submissions", c.SubmissionsPort, c.SubmissionHost)
	srv("submission", c.SubmissionPort, c.SubmissionHost)
	srv("sieve", c.ManageSievePort, c.IMAPHost)
	// RFC 6186 §3.4: "." as the target says a service is not offered.
	if c.IMAPPort == 0 && c.IMAPSPort == 0 {
		out = append(out, fmt.Sprintf("_imap._tcp.%s\t3600 IN SRV 0 0 0 .", d))
	}
	out = append(out, fmt.Sprintf("_pop3._tcp.%s\t3600 IN SRV 0 0 0 .", d), fmt.Sprintf("_pop3s._tcp.%s\t3600 IN SRV 0 0 0 .", d))
	if c.WebHost != "" {
		out = append(out,
			fmt.Sprintf("autoconfig.%s\t3600 IN CNAME %s", d, host(c.WebHost)),
			fmt.Sprintf("autodiscover.%s\t3600 IN CNAME %s", d, host(c.WebHost)),
			fmt.Sprintf("_autodiscover._tcp.%s\t3600 IN SRV 0 1 443 %s", d, host(c.WebHost)))
	}
	return out
}
