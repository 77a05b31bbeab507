package imap

// extensionCaps are the capabilities of the extensions added after the
// base set (one file per command; each handler cites its RFC).
var extensionCaps = []string{
	"MULTIAPPEND", // RFC 3502, append.go
}
