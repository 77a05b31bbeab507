// Package config holds mailmig's configuration: one TOML file whose every
// key has a built-in default (the commented default.toml embedded here is
// both the documentation and the source of the defaults), path templates
// with %u and %h, and validation that names the bad key and its line.
//
// Servers and the migration never read this package's file themselves:
// cmd/mailmig turns a Config into the option structs of each package.
package config

import (
	_ "embed"
	"errors"
	"fmt"
	"mailmig/migrate/units"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// DefaultPath is where mailmig looks for its configuration without --config.
const DefaultPath = "/etc/mailmig/mailmig.toml"

//go:embed default.toml
var defaultTOML string

// DefaultText returns the complete, commented default configuration.
func DefaultText() string { return defaultTOML }

// Config is the whole configuration.
type Config struct {
	Old         Old        `toml:"old"`
	Store       Store      `toml:"store"`
	State       State      `toml:"state"`
	Limits      Limits     `toml:"limits"`
	Migration   Migration  `toml:"migration"`
	Server      Server     `toml:"server"`
	Auth        Auth       `toml:"auth"`
	TLS         TLS        `toml:"tls"`
	Client      Client     `toml:"client"`
	IMAP        Listeners  `toml:"imap"`
	LMTP        LMTP       `toml:"lmtp"`
	Submission  Submission `toml:"submission"`
	ManageSieve Listeners  `toml:"managesieve"`
	Sieve       Sieve      `toml:"sieve"`
	Web         Web        `toml:"web"`
	Metrics     Metrics    `toml:"metrics"`
	Control     Control    `toml:"control"`
	Aliases     Aliases    `toml:"aliases"`

	// Connections bounds what clients may hold, per protocol.
	Connections Connections `toml:"connections"`

	// DataDir is set by ApplyDataDir (--data): everything lives below it.
	DataDir string `toml:"-"`
	// Path is the file the configuration was read from ("" = defaults).
	Path string `toml:"-"`

	// trustedSet records that a file set submission.trusted_networks.
	trustedSet bool
	// metricsSet records that a file set metrics.listen.
	metricsSet bool
}

// Old describes the UW-IMAP side.
type Old struct {
	Inbox         string `toml:"inbox"`
	Folders       string `toml:"folders"`
	Subscriptions string `toml:"subscriptions"`
	Homes         string `toml:"homes"`
	PasswdFile    string `toml:"passwd_file"`
	HomeMap       string `toml:"home_map"`
	FolderCharset string `toml:"folder_charset"`
}

// Store describes the new Maildir++ store.
type Store struct {
	Maildir     string `toml:"maildir"`
	SieveDir    string `toml:"sieve_dir"`
	SieveActive string `toml:"sieve_active"`
}

// State locates the SQLite database.
type State struct {
	Database string `toml:"database"`
}

// Limits are the size limits of the site.
type Limits struct {
	FolderCopy     Size  `toml:"folder_copy"`
	Quota          Size  `toml:"quota"`
	QuotaMessages  int64 `toml:"quota_messages"`
	MessageSize    Size  `toml:"message_size"`
	QuotaTemporary bool  `toml:"quota_temporary"`
}

// Migration configures the queue runner and the mails to users.
type Migration struct {
	DualWindow       Duration `toml:"dual_window"`
	Workers          int      `toml:"workers"`
	Secret           string   `toml:"secret"`
	ControlLocalPart string   `toml:"control_local_part"`
	Language         string   `toml:"language"`
	TemplatesDir     string   `toml:"templates_dir"`
	Postmaster       string   `toml:"postmaster"`
	// OverQuota: "attention" (stop the user) or "warn" (an event, go on).
	OverQuota string `toml:"over_quota"`
	// ProcmailAlways: the old MTA ran procmail for every user with a
	// ~/.procmailrc (not only through .forward); docs/filters.md.
	ProcmailAlways bool `toml:"procmail_always"`
}

// Server holds what all listeners share.
type Server struct {
	Hostname string   `toml:"hostname"`
	Domains  []string `toml:"domains"`
	LogLevel string   `toml:"log_level"`
	// LogFormat is "text" (slog's key=value lines) or "json" (one object a line).
	LogFormat string `toml:"log_format"`
	// AllowOpenTrust lets a trusted listener (passwords without TLS) sit
	// on a non-loopback address and submission relay for any network.
	AllowOpenTrust bool `toml:"allow_open_trust"`
}

// Auth configures how guessing passwords is slowed down
// (server/auth.Authenticator). Nothing is counted by user name alone.
type Auth struct {
	FailDelay            Duration `toml:"fail_delay"`
	MaxDelay             Duration `toml:"max_delay"`
	Window               Duration `toml:"window"`
	MaxFailuresPerIP     int      `toml:"max_failures_per_ip"`
	MaxFailuresPerIPUser int      `toml:"max_failures_per_ip_user"`
	MaxConcurrentChecks  int      `toml:"max_concurrent_checks"`
	// Sources are the password sources in the order they are asked
	// ("accounts", "crypt", "kerberos"); the first that knows a user
	// decides (docs/accounts.md).
	Sources []string `toml:"sources"`
	// Rehash stores a password proved against the crypt source (or an
	// imported hash) as an argon2id account.
	Rehash   bool         `toml:"rehash"`
	Crypt    AuthCrypt    `toml:"crypt"`
	Kerberos AuthKerberos `toml:"kerberos"`
}

// AuthCrypt is the crypt(3) password source.
type AuthCrypt struct {
	File   string `toml:"file"`
	Format string `toml:"format"` // "shadow" or "passwd-file"
}

// AuthKerberos is the Kerberos password source.
type AuthKerberos struct {
	Realm    string `toml:"realm"`
	Krb5Conf string `toml:"krb5_conf"`
	Keytab   string `toml:"keytab"`
	// Service is the principal (SERVICE/HOST, realm added) whose key
	// in the keytab proves the KDC genuine after a password check.
	Service string `toml:"service"`
	// GSSAPI offers SASL GSSAPI on IMAP, submission and ManageSieve
	// with the keytab's imap/, smtp/ and sieve/ principals.
	GSSAPI bool `toml:"gssapi"`
	// GSSAPIWithoutTLS offers it on connections without TLS too.
	GSSAPIWithoutTLS bool `toml:"gssapi_without_tls"`
	// GSSAPIRealms are client realms accepted besides Realm.
	GSSAPIRealms []string `toml:"gssapi_realms"`
	// Principals maps whole principals ("alice/admin@REALM") to users.
	Principals map[string]string `toml:"principals"`
}

// Connections bounds what clients may hold, per protocol (IMAP, LMTP,
// submission, ManageSieve each count separately).
type Connections struct {
	MaxTotal       int      `toml:"max_total"`
	MaxPerIP       int      `toml:"max_per_ip"`
	MaxPerUserIP   int      `toml:"max_per_user_ip"`
	PreAuthTimeout Duration `toml:"preauth_timeout"`
	IdleTimeout    Duration `toml:"idle_timeout"`
	CommandTimeout Duration `toml:"command_timeout"`
	WriteTimeout   Duration `toml:"write_timeout"`
	// CommandLiterals bounds one IMAP command's literals after login.
	CommandLiterals Size `toml:"command_literals"`
	// SpoolThreshold: LMTP and submission keep a message in memory up to
	// this size while it arrives, and in a temporary file beyond it.
	SpoolThreshold Size `toml:"spool_threshold"`
}

// TLS names the certificate files. In --data mode a self-signed pair is
// generated below the data directory when these files do not exist.
type TLS struct {
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
	// MinVersion is the lowest TLS version offered ("1.2"; "1.0" and
	// "1.1" for old clients, with a warning at start).
	MinVersion string `toml:"min_version"`
	// CAFile is a PEM bundle of extra trusted roots for the checks (a
	// private CA); empty = the system store.
	CAFile string `toml:"ca_file"`
}

// Client is what users are told to configure.
type Client struct {
	IMAPHost        string `toml:"imap_host"`
	IMAPPort        int    `toml:"imap_port"`
	IMAPSPort       int    `toml:"imaps_port"`
	SubmissionHost  string `toml:"submission_host"`
	SubmissionPort  int    `toml:"submission_port"`
	SubmissionsPort int    `toml:"submissions_port"`
	ManageSievePort int    `toml:"managesieve_port"`
}

// Metrics is the Prometheus endpoint (server/metrics): plain HTTP on
// Listen ("" = off), GET /metrics.
type Metrics struct {
	Listen string `toml:"listen"`
}

// Control is serve's local control socket, which the admin commands
// (who, kick, queue flush...) talk to.
type Control struct {
	Socket string `toml:"socket"`
}

// TLS modes of a listener.
const (
	TLSNone     = "none"
	TLSStartTLS = "starttls"
	TLSImplicit = "implicit"
)

// Listener is one listening address of a protocol.
type Listener struct {
	Address string `toml:"address"`
	TLS     string `toml:"tls"`
	// Trusted listeners accept authentication without TLS.
	Trusted bool `toml:"trusted"`
}

// Listeners is a protocol section that only has listeners.
type Listeners struct {
	Listeners []Listener `toml:"listeners"`
}

// Aliases is the site's alias map (server/aliases), a file in
// /etc/aliases format, and who gets postmaster@ when it does not say.
type Aliases struct {
	File       string   `toml:"file"`
	Postmaster []string `toml:"postmaster"`
}

// PostmasterAccounts are the accounts for postmaster@ when the alias file
// has no postmaster entry: [aliases] postmaster, else the dashboard's
// postmasters ([web] postmasters, [migration] postmaster).
func (c *Config) PostmasterAccounts() []string {
	if len(c.Aliases.Postmaster) > 0 {
		return c.Aliases.Postmaster
	}
	return c.WebPostmasters()
}

// Web is the web page's section (server/web): HTTPS listeners only.
type Web struct {
	Listeners []Listener `toml:"listeners"`
	// Host is the name users reach the page at (autoconfig, DNS records,
	// the confirmation mail); empty = server.hostname.
	Host string `toml:"host"`
	// Postmasters may use the migration dashboard; empty = the
	// [migration] postmaster account.
	Postmasters []string `toml:"postmasters"`
	SessionTTL  Duration `toml:"session_ttl"`
	// Kerberos offers single sign-on (HTTP Negotiate/SPNEGO) at
	// /login/kerberos with HTTP/<host> keys from [auth.kerberos] keytab.
	Kerberos bool `toml:"kerberos"`
}

// WebHost is the web page's host name.
func (c *Config) WebHost() string {
	if c.Web.Host != "" {
		return c.Web.Host
	}
	return c.Server.Hostname
}

// WebPostmasters are the users who see the dashboard.
func (c *Config) WebPostmasters() []string {
	if len(c.Web.Postmasters) > 0 {
		return c.Web.Postmasters
	}
	return []string{c.Migration.Postmaster}
}

// LMTP is the delivery listener section.
type LMTP struct {
	Socket    string     `toml:"socket"`
	Listeners []Listener `toml:"listeners"`

	// SocketMode is the socket's octal permission ("0660"); SocketGroup
	// its group, the MTA's ("" = the server's own group).
	SocketMode  string `toml:"socket_mode"`
	SocketGroup string `toml:"socket_group"`
}

// Submission configures message submission and the outgoing queue.
type Submission struct {
	Listeners         []Listener `toml:"listeners"`
	TrustedNetworks   []string   `toml:"trusted_networks"`
	Smarthost         string     `toml:"smarthost"`
	SmarthostUser     string     `toml:"smarthost_user"`
	SmarthostPassword string     `toml:"smarthost_password"`
	SmarthostSTARTTLS bool       `toml:"smarthost_starttls"`
	Spool             string     `toml:"spool"`
	RetryIntervals    []Duration `toml:"retry_intervals"`
	RetryWindow       Duration   `toml:"retry_window"`
}

// Sieve configures filtering at delivery.
type Sieve struct {
	GlobalScript        string  `toml:"global_script"`
	GlobalBefore        bool    `toml:"global_before"`
	SpamFolder          string  `toml:"spam_folder"`
	SpamHeader          string  `toml:"spam_header"`
	SpamThreshold       string  `toml:"spam_threshold"`
	MaxScriptSize       Size    `toml:"max_script_size"`
	MaxScripts          int     `toml:"max_scripts"`
	VacationDefaultDays int     `toml:"vacation_default_days"`
	GlobalDir           string  `toml:"global_dir"`
	SpamtestMaxValue    float64 `toml:"spamtest_max_value"`
}

// Default returns the built-in configuration.
func Default() *Config {
	var c Config
	if _, err := toml.Decode(defaultTOML, &c); err != nil {
		panic("config: embedded default.toml is broken: " + err.Error())
	}
	return &c
}

// Error is a configuration problem with the key and line it concerns.
type Error struct {
	Path string
	Line int // 0 when unknown
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Path)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, ": %s", e.Key)
	}
	fmt.Fprintf(&b, ": %s", e.Msg)
	return b.String()
}

// Load reads path over the defaults. A path that does not exist is not an
// error when allowMissing is set (the default path may be absent).
func Load(path string, allowMissing bool) (*Config, error) {
	c := Default()
	data, err := os.ReadFile(path)
	if err != nil {
		if allowMissing && errors.Is(err, os.ErrNotExist) {
			return c, nil
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := c.decode(path, string(data)); err != nil {
		return nil, err
	}
	c.Path = path
	return c, nil
}

// Parse decodes text (named path in errors) over the defaults.
func Parse(path, text string) (*Config, error) {
	c := Default()
	if err := c.decode(path, text); err != nil {
		return nil, err
	}
	c.Path = path
	return c, nil
}

func (c *Config) decode(path, text string) error {
	md, err := toml.Decode(text, c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return &Error{Path: path, Line: pe.Position.Line, Key: pe.LastKey, Msg: pe.Message}
		}
		return &Error{Path: path, Msg: err.Error()}
	}
	c.trustedSet = md.IsDefined("submission", "trusted_networks")
	c.metricsSet = md.IsDefined("metrics", "listen")
	if und := md.Undecoded(); len(und) > 0 {
		key := und[0].String()
		return &Error{Path: path, Line: lineOfKey(text, und[0]), Key: key, Msg: "unknown key"}
	}
	return c.validate(path, text)
}

// lineOfKey finds the line that sets key (its last part, below the table
// of its first parts).
func lineOfKey(text string, key toml.Key) int {
	if len(key) == 0 {
		return 0
	}
	whole := key.String()
	table := strings.Join(key[:len(key)-1], ".")
	last := key[len(key)-1]
	cur := ""
	for i, line := range strings.Split(text, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "[") && !strings.HasPrefix(t, "[[") {
			cur = strings.Trim(strings.SplitN(t, "]", 2)[0], "[ ")
			if cur == whole {
				return i + 1 // an unknown table
			}
			continue
		}
		if strings.HasPrefix(t, "[[") {
			cur = strings.Trim(strings.SplitN(t, "]]", 2)[0], "[ ")
			continue
		}
		name := strings.TrimSpace(strings.SplitN(t, "=", 2)[0])
		name = strings.Trim(name, `"'`)
		if strings.Contains(t, "=") && name == last && (cur == table || table == "") {
			return i + 1
		}
	}
	return 0
}

func (c *Config) validate(path, text string) error {
	bad := func(key, format string, a ...any) error {
		parts := strings.Split(key, ".")
		return &Error{Path: path, Line: lineOfKey(text, toml.Key(parts)), Key: key, Msg: fmt.Sprintf(format, a...)}
	}
	for _, t := range []struct{ key, val string }{
		{"old.inbox", c.Old.Inbox}, {"old.folders", c.Old.Folders},
		{"old.subscriptions", c.Old.Subscriptions}, {"store.maildir", c.Store.Maildir},
		{"store.sieve_dir", c.Store.SieveDir}, {"store.sieve_active", c.Store.SieveActive},
	} {
		if t.val == "" {
			return bad(t.key, "must not be empty")
		}
		if err := checkTemplate(t.val); err != nil {
			return bad(t.key, "%v", err)
		}
	}
	if !strings.Contains(c.Store.Maildir, "%u") && !strings.Contains(c.Store.Maildir, "%h") {
		return bad("store.maildir", "must contain %%u or %%h, or every user shares one Maildir")
	}
	switch c.Old.Homes {
	case "passwd":
	case "map":
		if c.Old.HomeMap == "" {
			return bad("old.home_map", `must be set when homes = "map"`)
		}
	default:
		return bad("old.homes", `must be "passwd" or "map", not %q`, c.Old.Homes)
	}
	switch strings.ToLower(c.Old.FolderCharset) {
	case "latin1", "iso-8859-1", "iso-8859-15", "latin9", "windows-1252", "cp1252", "utf-8", "utf8":
	default:
		return bad("old.folder_charset", "unsupported charset %q (latin1, iso-8859-15, windows-1252, utf-8)", c.Old.FolderCharset)
	}
	if c.State.Database == "" {
		return bad("state.database", "must not be empty")
	}
	if c.Limits.Quota < 0 || c.Limits.FolderCopy < 0 || c.Limits.MessageSize <= 0 {
		return bad("limits", "sizes must be positive")
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{{"auth.fail_delay", c.Auth.FailDelay}, {"auth.max_delay", c.Auth.MaxDelay}, {"auth.window", c.Auth.Window}} {
		if d.v <= 0 {
			return bad(d.key, "must be positive")
		}
	}
	if c.Auth.MaxFailuresPerIP < 1 || c.Auth.MaxFailuresPerIPUser < 1 {
		return bad("auth", "max_failures_per_ip and max_failures_per_ip_user must be at least 1")
	}
	if err := c.validateConnections(bad); err != nil {
		return err
	}
	if c.Auth.MaxConcurrentChecks < 0 {
		return bad("auth.max_concurrent_checks", "must not be negative (0 = 2 per CPU)")
	}
	if err := c.validateAuthSources(bad); err != nil {
		return err
	}
	if c.Migration.DualWindow <= 0 {
		return bad("migration.dual_window", "must be positive")
	}
	if c.Migration.Workers < 1 {
		return bad("migration.workers", "must be at least 1")
	}
	switch c.Migration.Language {
	case "en", "de":
	default:
		return bad("migration.language", "shipped languages are en and de, not %q", c.Migration.Language)
	}
	if c.Migration.ControlLocalPart == "" || strings.ContainsAny(c.Migration.ControlLocalPart, "@+ ") {
		return bad("migration.control_local_part", "must be a plain local part without @, + or spaces")
	}
	if c.Server.Hostname == "" {
		return bad("server.hostname", "must not be empty")
	}
	if len(c.Server.Domains) == 0 {
		return bad("server.domains", "needs at least one local domain")
	}
	switch c.Server.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return bad("server.log_level", "must be debug, info, warn or error")
	}
	switch c.Server.LogFormat {
	case "", "text", "json": // "" = text (a Config built in code)
	default:
		return bad("server.log_format", "must be text or json")
	}
	for _, sec := range []struct {
		name string
		ls   []Listener
	}{{"imap", c.IMAP.Listeners}, {"lmtp", c.LMTP.Listeners}, {"submission", c.Submission.Listeners}, {"managesieve", c.ManageSieve.Listeners}, {"web", c.Web.Listeners}} {
		for _, l := range sec.ls {
			if _, _, err := net.SplitHostPort(l.Address); err != nil {
				return bad(sec.name+".listeners", "address %q: %v", l.Address, err)
			}
			switch l.TLS {
			case TLSNone, TLSStartTLS, TLSImplicit:
			default:
				return bad(sec.name+".listeners", "tls must be none, starttls or implicit, not %q", l.TLS)
			}
		}
	}
	for _, l := range c.Web.Listeners {
		if l.TLS != TLSImplicit {
			return bad("web.listeners", "the web page is served over HTTPS only: tls must be \"implicit\", not %q", l.TLS)
		}
	}
	for _, n := range c.Submission.TrustedNetworks {
		_, ipn, err := net.ParseCIDR(n)
		if err != nil {
			return bad("submission.trusted_networks", "%q is not a CIDR network", n)
		}
		if ones, _ := ipn.Mask.Size(); ones == 0 && !c.Server.AllowOpenTrust {
			return bad("submission.trusted_networks", "%q lets the whole Internet relay through this server without a password (an open relay); set [server] allow_open_trust = true if that is really meant", n)
		}
	}
	if !c.Server.AllowOpenTrust && c.DataDir == "" {
		for _, sec := range []struct {
			name string
			ls   []Listener
		}{{"imap", c.IMAP.Listeners}, {"submission", c.Submission.Listeners}, {"managesieve", c.ManageSieve.Listeners}, {"web", c.Web.Listeners}} {
			for _, l := range sec.ls {
				if l.Trusted && !isLoopbackAddr(l.Address) {
					return bad(sec.name+".listeners", "listener %s is trusted (passwords without TLS, relaying without a password) but not on a loopback address: anyone who reaches it is trusted; use trusted = false, a loopback address, or set [server] allow_open_trust = true if that is really meant", l.Address)
				}
			}
		}
	}
	if c.Submission.Smarthost != "" {
		if _, _, err := net.SplitHostPort(c.Submission.Smarthost); err != nil {
			return bad("submission.smarthost", "%v", err)
		}
	}
	if len(c.Submission.RetryIntervals) == 0 {
		return bad("submission.retry_intervals", "needs at least one interval")
	}
	if c.Sieve.SpamFolder == "" {
		return bad("sieve.spam_folder", "must not be empty")
	}
	if c.Sieve.MaxScripts < 1 || c.Sieve.MaxScriptSize < 1 {
		return bad("sieve", "max_scripts and max_script_size must be positive")
	}
	switch c.Migration.OverQuota {
	case "", "attention", "warn":
	default:
		return bad("migration.over_quota", `must be "attention" or "warn", not %q`, c.Migration.OverQuota)
	}
	switch c.TLS.MinVersion {
	case "", "1.0", "1.1", "1.2", "1.3":
	default:
		return bad("tls.min_version", `must be "1.0", "1.1", "1.2" or "1.3", not %q`, c.TLS.MinVersion)
	}
	for _, a := range c.Aliases.Postmaster {
		if a == "" || strings.ContainsAny(a, "@ ,") {
			return bad("aliases.postmaster", "%q is not an account name", a)
		}
	}
	return nil
}

func checkTemplate(t string) error {
	for i := 0; i < len(t); i++ {
		if t[i] != '%' {
			continue
		}
		if i+1 >= len(t) {
			return fmt.Errorf("template %q ends in %%", t)
		}
		switch t[i+1] {
		case 'u', 'h', '%':
			i++
		default:
			return fmt.Errorf("template %q: unknown %%%c (use %%u, %%h or %%%%)", t, t[i+1])
		}
	}
	return nil
}

// Expand fills a path template for one user.
func Expand(tmpl, user, home string) string {
	var b strings.Builder
	for i := 0; i < len(tmpl); i++ {
		if tmpl[i] == '%' && i+1 < len(tmpl) {
			switch tmpl[i+1] {
			case 'u':
				b.WriteString(user)
				i++
				continue
			case 'h':
				b.WriteString(home)
				i++
				continue
			case '%':
				b.WriteByte('%')
				i++
				continue
			}
		}
		b.WriteByte(tmpl[i])
	}
	return b.String()
}

// NeedsHome reports whether a template uses %h.
func NeedsHome(tmpl string) bool { return strings.Contains(strings.ReplaceAll(tmpl, "%%", ""), "%h") }

// ApplyDataDir points everything at dir: the database, the new store, the
// old world (dir/old), the outgoing spool and TLS files, and makes every
// listener a trusted loopback one on an ephemeral port. Used by --data for
// demos and tests.
func (c *Config) ApplyDataDir(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	c.DataDir = abs
	c.State.Database = filepath.Join(abs, "state.db")
	c.Store.Maildir = filepath.Join(abs, "mail", "%u", "Maildir")
	c.Store.SieveDir = filepath.Join(abs, "mail", "%u", "sieve")
	c.Store.SieveActive = filepath.Join(abs, "mail", "%u", ".dovecot.sieve")
	c.Old.Inbox = filepath.Join(abs, "old", "spool", "%u")
	c.Old.Folders = filepath.Join(abs, "old", "home", "%u", "mail")
	c.Old.Subscriptions = filepath.Join(abs, "old", "home", "%u", ".mailboxlist")
	c.Old.Homes = "map"
	c.Old.HomeMap = filepath.Join(abs, "old", "homes")
	c.TLS.Cert = filepath.Join(abs, "tls", "cert.pem")
	c.TLS.Key = filepath.Join(abs, "tls", "key.pem")
	c.Submission.Spool = filepath.Join(abs, "outbound")
	c.LMTP.Socket = filepath.Join(abs, "lmtp.sock")
	c.applyDataDirAuth(abs)
	c.Control.Socket = filepath.Join(abs, "control.sock")
	// The metrics listener too, unless a file put it on loopback itself
	// (the built-in 127.0.0.1:9154 would clash between demos and tests).
	if c.Metrics.Listen != "" && !(c.metricsSet && isLoopbackAddr(c.Metrics.Listen)) {
		c.Metrics.Listen = "127.0.0.1:0"
	}
	if c.Path == "" {
		c.LMTP.SocketGroup = "" // the data directory's owner runs everything
	}
	// Listeners not on loopback move to an ephemeral loopback port and
	// become trusted. A listener a config file already puts on loopback
	// is kept as written, so a test can ask for an untrusted one.
	loop := func(ls []Listener) []Listener {
		out := make([]Listener, len(ls))
		for i, l := range ls {
			if !(c.Path != "" && isLoopbackAddr(l.Address)) {
				l.Address = "127.0.0.1:0"
				l.Trusted = true
			}
			out[i] = l
		}
		return out
	}
	c.IMAP.Listeners = loop(c.IMAP.Listeners)
	c.Submission.Listeners = loop(c.Submission.Listeners)
	c.ManageSieve.Listeners = loop(c.ManageSieve.Listeners)
	c.LMTP.Listeners = loop(c.LMTP.Listeners)
	c.Web.Listeners = loop(c.Web.Listeners)
	if len(c.LMTP.Listeners) == 0 {
		c.LMTP.Listeners = []Listener{{Address: "127.0.0.1:0", TLS: TLSNone, Trusted: true}}
	}
	// Demo and test worlds are loopback-only: loopback may relay
	// without AUTH there, unless a config file says otherwise.
	if !c.trustedSet {
		c.Submission.TrustedNetworks = []string{"127.0.0.0/8", "::1/128"}
	}
	c.Server.Hostname = "localhost"
	c.Server.Domains = []string{"example.org"}
	c.Client.IMAPHost = "localhost"
	c.Client.SubmissionHost = "localhost"
	return nil
}

// Size is a byte count written with an optional KB/MB/GB/TB suffix.
type Size int64

// UnmarshalText parses "500MB", "1GB", "64KB" or a plain number of bytes.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = Size(v)
	return nil
}

// MarshalText writes the size with the largest exact suffix.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s Size) String() string { return units.FormatSize(int64(s)) }

// ParseSize parses a size such as "500MB" (powers of 1024; B optional).
func ParseSize(s string) (int64, error) { return units.ParseSize(s) }

// Duration is a time.Duration written in Go's syntax ("48h", "90s").
type Duration time.Duration

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("bad duration %q (want e.g. 48h, 30m, 90s)", string(b))
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration in Go's syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validateConnections checks [connections].
func (c *Config) validateConnections(bad func(key, format string, a ...any) error) error {
	k := c.Connections
	if k.MaxTotal < 0 || k.MaxPerIP < 0 || k.MaxPerUserIP < 0 {
		return bad("connections", "limits must not be negative (0 = none)")
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{{"connections.preauth_timeout", k.PreAuthTimeout}, {"connections.idle_timeout", k.IdleTimeout},
		{"connections.command_timeout", k.CommandTimeout}, {"connections.write_timeout", k.WriteTimeout}} {
		if d.v <= 0 {
			return bad(d.key, "must be positive")
		}
	}
	if m, err := strconv.ParseUint(c.LMTP.SocketMode, 8, 32); err != nil || m > 0o777 {
		return bad("lmtp.socket_mode", "must be an octal permission such as \"0660\", not %q", c.LMTP.SocketMode)
	}
	if k.CommandLiterals <= 0 || k.SpoolThreshold <= 0 {
		return bad("connections", "command_literals and spool_threshold must be positive")
	}
	return nil
}

// Warnings lists settings that are accepted but unwise; `config check`
// prints them and `serve` logs them at start.
func (c *Config) Warnings() []string {
	var w []string
	if d := c.Connections.IdleTimeout.D(); d > 0 && d < 30*time.Minute {
		w = append(w, fmt.Sprintf("connections.idle_timeout = %s is below 30 minutes, the minimum RFC 9051 §5.4 asks of an IMAP server after login", d))
	}
	return w
}
