package mailstore

import (
	"testing"
)

func TestResolveFolder(t *testing.T) {
	tests := []struct {
		name     string
		existing []string
		ask      string
		junk     string
		want     string
	}{
		{"site junk exists, Junk asked", []string{"junk"}, "Junk", "junk", "junk"},
		{"site junk exists, SPAM asked", []string{"junk"}, "SPAM", "junk", "junk"},
		{"nothing yet: the site's name", nil, "Junk", "junk", "junk"},
		{"user's own Spam folder", []string{"Spam"}, "Junk", "junk", "Spam"},
		{"site folder preferred over another junk-like one", []string{"Spam", "junk"}, "spam", "junk", "junk"},
		{"configured spam folder name", []string{"Junk E-mail"}, "Junk", "Junk E-mail", "Junk E-mail"},
		{"ordinary names stay case sensitive", []string{"work"}, "Work", "junk", "Work"},
		{"sub-folders untouched", []string{"junk"}, "Lists/Junk", "junk", "Lists/Junk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(t.TempDir(), Options{CreateRoot: true, NoFsync: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range tt.existing {
				if err := s.CreateFolder(f); err != nil {
					t.Fatal(err)
				}
			}
			if got := ResolveFolder(s, tt.ask, tt.junk); got != tt.want {
				t.Errorf("ResolveFolder(%q) = %q, want %q", tt.ask, got, tt.want)
			}
		})
	}
}
