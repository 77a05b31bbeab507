package config

import (
	"fmt"
	"path/filepath"
)

// validateAuthSources checks [auth] sources and the source tables.
func (c *Config) validateAuthSources(bad func(key, format string, a ...any) error) error {
	if len(c.Auth.Sources) == 0 {
		return bad("auth.sources", `must name at least one source ("accounts", "crypt", "kerberos")`)
	}
	seen := map[string]bool{}
	for _, s := range c.Auth.Sources {
		if seen[s] {
			return bad("auth.sources", "%q is listed twice", s)
		}
		seen[s] = true
		switch s {
		case "accounts":
		case "crypt":
			if c.Auth.Crypt.File == "" {
				return bad("auth.crypt.file", "must be set when sources has \"crypt\"")
			}
			if f := c.Auth.Crypt.Format; f != "shadow" && f != "passwd-file" {
				return bad("auth.crypt.format", `must be "shadow" or "passwd-file", not %q`, f)
			}
		case "kerberos":
			k := c.Auth.Kerberos
			if k.Realm == "" || k.Keytab == "" || k.Service == "" || k.Krb5Conf == "" {
				return bad("auth.kerberos", "realm, krb5_conf, keytab and service must be set when sources has \"kerberos\"")
			}
		default:
			return bad("auth.sources", "unknown source %q (accounts, crypt, kerberos)", s)
		}
	}
	if k := c.Auth.Kerberos; k.GSSAPI && (k.Realm == "" || k.Keytab == "") {
		return bad("auth.kerberos.gssapi", "needs realm and keytab")
	}
	if k := c.Auth.Kerberos; c.Web.Kerberos && (k.Realm == "" || k.Keytab == "") {
		return bad("web.kerberos", "needs [auth.kerberos] realm and keytab")
	}
	return nil
}

// KerberosPrincipal is the service principal name the KDC is verified
// with: service/hostname.
func (c *Config) KerberosPrincipal() string {
	return fmt.Sprintf("%s/%s", c.Auth.Kerberos.Service, c.Server.Hostname)
}

// applyDataDirAuth: in --data mode the old site's shadow file is
// DIR/old/shadow (beside its spool and homes), and the crypt source is
// asked after accounts, as on a real site.
func (c *Config) applyDataDirAuth(abs string) {
	if c.Auth.Crypt.File == "/etc/shadow" {
		c.Auth.Crypt.File = filepath.Join(abs, "old", "shadow")
		c.Auth.Crypt.Format = "shadow"
	}
	if len(c.Auth.Sources) == 1 && c.Auth.Sources[0] == "accounts" {
		c.Auth.Sources = []string{"accounts", "crypt"}
	}
}
