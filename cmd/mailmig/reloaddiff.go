package main

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"mailmig/cmd/mailmig/config"
)

// reloadApplied are the settings a SIGHUP applies to the running server
// (through the hooks registered with onReload and the certificate
// reload). Every other changed setting is logged as needing a restart
// (issue 9 item 10).
var reloadApplied = map[string]bool{
	"sieve.global_script": true, "sieve.global_before": true, "sieve.global_dir": true,
	"sieve.spam_folder": true, "sieve.spam_header": true, "sieve.spam_threshold": true,
	"submission.smarthost": true, "submission.smarthost_user": true,
	"submission.smarthost_password": true, "submission.smarthost_starttls": true,
}

// flattenConfig maps every setting's TOML key ("limits.message_size") to
// its value as text.
func flattenConfig(c *config.Config) map[string]string {
	out := map[string]string{}
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := strings.Split(f.Tag.Get("toml"), ",")[0]
			if !f.IsExported() || tag == "" || tag == "-" {
				continue
			}
			key := tag
			if prefix != "" {
				key = prefix + "." + tag
			}
			fv := v.Field(i)
			if fv.Kind() == reflect.Struct && fv.Type().PkgPath() == t.PkgPath() && fv.NumField() > 0 && !hasTextMarshaler(fv) {
				walk(key, fv)
				continue
			}
			out[key] = fmt.Sprintf("%v", fv.Interface())
		}
	}
	walk("", reflect.ValueOf(*c))
	return out
}

func hasTextMarshaler(v reflect.Value) bool {
	_, ok := v.Interface().(interface{ MarshalText() ([]byte, error) })
	return ok
}

// logReloadDiff logs, for each setting that differs between the running
// configuration and the new one, whether the reload applied it or it
// needs a restart.
func (e *env) logReloadDiff(running, next *config.Config) {
	a, b := flattenConfig(running), flattenConfig(next)
	var keys []string
	for k, v := range b {
		if a[k] != v {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if reloadApplied[k] {
			e.log.Info("reload: applied", "key", k)
		} else {
			e.log.Warn("reload: setting changed but needs a restart", "key", k, "running", a[k], "file", b[k])
		}
	}
}
