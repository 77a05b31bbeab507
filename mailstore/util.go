package mailstore

import "strings"

func sanitizeHost(h string) string {
	return strings.NewReplacer("/", `\057`, ":", `\072`).Replace(h)
}

func normalizeName(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return name
}

func hasFlag(flags []string, f string) bool {
	for _, x := range flags {
		if strings.EqualFold(x, f) {
			return true
		}
	}
	return false
}
