package filters

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"mailmig/migrate"
	"mailmig/migrate/paths"
	"mailmig/server/sieve"
	"mailmig/state"
)

// ScriptName is the name of the converted script in the user's Sieve
// storage (~/sieve/migrated.sieve).
const ScriptName = "migrated"

// Installer is the runner's filter step: it converts the user's old
// filters with the copy's folder names and writes ScriptName into the
// new Sieve storage. The script is made active only when the user has no
// active script yet: one the user made on the new server (ManageSieve,
// the web page) during the dual window is never replaced.
type Installer struct {
	// Domain is the user's mail domain (forwards to bare names, the
	// vacation :addresses).
	Domain string
	// ProcmailAlways: the old MTA ran procmail for every user with a
	// ~/.procmailrc (config migration.procmail_always).
	ProcmailAlways bool
	// GlobalInclude is the global script the converted script includes
	// first (sieve.GlobalSpam).
	GlobalInclude string
	// GlobalDir is the site's global script directory (for checking the
	// include when storing).
	GlobalDir string
	// MaxScriptSize bounds the script ([sieve] max_script_size; 0 none).
	MaxScriptSize int64
	// Now stamps the script (time.Now if nil).
	Now func() time.Time
}

var _ migrate.FilterInstaller = (*Installer)(nil)

// Install converts and stores the user's filters.
func (in *Installer) Install(ctx context.Context, e *state.Entry, p *paths.User, rep *migrate.Report) (*migrate.FiltersReport, error) {
	if p.Home == "" || p.SieveDir == "" || p.SieveActive == "" {
		return nil, nil
	}
	folders := map[string]string{}
	if rep != nil {
		for _, f := range rep.Folders {
			if f.Source != "" {
				folders[filepath.Clean(f.Source)] = f.New
			}
		}
	}
	o := Options{
		User: e.User, Home: p.Home, Spool: p.Inbox, FoldersDir: p.Folders, Folders: folders,
		Domain: in.Domain, GlobalInclude: in.GlobalInclude, ProcmailAlways: in.ProcmailAlways, Now: in.Now,
	}
	if in.Domain != "" {
		o.Addresses = []string{e.User + "@" + in.Domain}
	}
	res, err := Convert(o)
	if err != nil {
		return nil, fmt.Errorf("filters of %s: %w", e.User, err)
	}
	out := &migrate.FiltersReport{Sources: res.Sources, Notes: res.Notes}
	for _, pr := range res.Problems {
		// The user reads "~/.procmailrc line 12: ...".
		if rel, err := filepath.Rel(p.Home, pr.File); err == nil && !strings.HasPrefix(rel, "..") {
			pr.File = "~/" + rel
		}
		out.Problems = append(out.Problems, pr.String())
	}
	if res.Empty() {
		return out, nil
	}
	st := &sieve.Storage{Dir: p.SieveDir, ActiveLink: p.SieveActive, GlobalDir: in.GlobalDir, MaxScriptSize: in.MaxScriptSize}
	if err := st.Put(ScriptName, []byte(res.Script)); err != nil {
		return nil, fmt.Errorf("filters of %s: store %s: %w", e.User, ScriptName, err)
	}
	out.Script = filepath.Join(p.SieveDir, ScriptName+sieve.Suffix)
	active, content, err := st.Active()
	if err != nil {
		return nil, fmt.Errorf("filters of %s: %w", e.User, err)
	}
	switch {
	case active == ScriptName:
		out.Activated = true
	case active != "" || content != nil:
		out.NotActivated = "the user already has an active script"
		if active != "" {
			out.NotActivated += fmt.Sprintf(" (%q)", active)
		}
	default:
		if err := st.SetActive(ScriptName); err != nil {
			return nil, fmt.Errorf("filters of %s: activate: %w", e.User, err)
		}
		out.Activated = true
	}
	return out, nil
}
