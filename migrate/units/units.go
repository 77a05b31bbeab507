// Package units parses the byte sizes written in mailmig's configuration
// and in its tools' flags ("500MB", "1GB", "1048576").
package units

import (
	"fmt"
	"strings"
)

// ParseSize parses a size such as "500MB" (powers of 1024; B optional).
func ParseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suf string
		n   int64
	}{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.suf) {
			t = strings.TrimSpace(strings.TrimSuffix(t, u.suf))
			mult = u.n
			break
		}
	}
	var n int64
	if _, err := fmt.Sscanf(t, "%d", &n); err != nil || fmt.Sprint(n) != t || n < 0 {
		return 0, fmt.Errorf("bad size %q (want e.g. 500MB, 1GB, 1048576)", s)
	}
	return n * mult, nil
}

// FormatSize writes v with the largest exact suffix (1048576 → "1MB").
func FormatSize(v int64) string {
	for _, u := range []struct {
		suf string
		n   int64
	}{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}} {
		if v != 0 && v%u.n == 0 {
			return fmt.Sprintf("%d%s", v/u.n, u.suf)
		}
	}
	return fmt.Sprintf("%d", v)
}
