package imap

// The extensions added after the base set, one file per command, each
// handler citing its RFC. Registered here (this file sorts after conn.go,
// whose init builds the table) so that conn.go's table stays as it was.

// extensionCaps are their capabilities.
var extensionCaps = []string{
	"MULTIAPPEND",       // RFC 3502, append.go
	"SORT",              // RFC 5256, sort.go
	"SORT=DISPLAY",      // RFC 5957, sort.go
	"THREAD=REFERENCES", // RFC 5256, thread.go
	"THREAD=ORDEREDSUBJECT",
	"THREAD=REFS",        // dovecot's, thread.go
	"ESORT",              // RFC 5267, sort.go
	"WITHIN",             // RFC 5032, within.go
	"COMPRESS=DEFLATE",   // RFC 4978, compress.go
	"LIST-MYRIGHTS",      // RFC 8440, listrights.go
	"METADATA",           // RFC 5464, metadata.go
	"UTF8=ACCEPT",        // RFC 6855, utf8accept.go
	"PREVIEW",            // RFC 8970, preview.go
	"CATENATE",           // RFC 4469, catenate.go
	"CREATE-SPECIAL-USE", // RFC 6154 §3, createspecialuse.go
	"NOTIFY",             // RFC 5465, notify.go
	"URL-PARTIAL",        // RFC 5550 §5, catenate.go
}

func init() {
	handlers["SORT"] = handler{states: selectedS, fn: (*conn).cmdSort, noExpunge: true}
	handlers["THREAD"] = handler{states: selectedS, fn: (*conn).cmdThread, noExpunge: true}
	uidCommands["SORT"] = true
	uidCommands["THREAD"] = true
	handlers["COMPRESS"] = handler{states: authd, fn: (*conn).cmdCompress}       // compress.go
	handlers["GETMETADATA"] = handler{states: authd, fn: (*conn).cmdGetMetadata} // metadata.go
	handlers["SETMETADATA"] = handler{states: authd, fn: (*conn).cmdSetMetadata}
}
