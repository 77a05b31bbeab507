package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"mailmig/cmd/mailmig/config"
)

// TestGendocMatchesCommands: the man pages `mailmig gendoc` writes are
// exactly one per visible command plus mailmig(8) and mailmig.toml(5);
// each names every subcommand and flag of its command; groff renders them
// without a warning; mailmig.toml(5) has every key of the default
// configuration.
func TestGendocMatchesCommands(t *testing.T) {
	groff := requireTool(t, "groff")
	dir := t.TempDir()
	mustMailmig(t, "", "gendoc", "--man", dir, "--bash", filepath.Join(dir, "c.bash"), "--zsh", filepath.Join(dir, "_mailmig"))
	app := newApp()
	want := []string{"mailmig.8", "mailmig.toml.5"}
	for _, c := range visibleCommands(app.Commands) {
		want = append(want, "mailmig-"+c.Name+".8")
	}
	got, _ := filepath.Glob(filepath.Join(dir, "*.[58]"))
	for i := range got {
		got[i] = filepath.Base(got[i])
	}
	sort.Strings(want)
	sort.Strings(got)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("pages %v, want %v", got, want)
	}
	render := func(page string) string {
		t.Helper()
		cmd := exec.Command(groff, "-man", "-ww", "-Tutf8", "-rLL=200n", filepath.Join(dir, page))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || stderr.Len() != 0 {
			t.Errorf("groff %s: %v\n%s", page, err, stderr.String())
		}
		// Plain text: no overstrike, no hyphenation at line ends.
		return regexp.MustCompile(".\b").ReplaceAllString(string(out), "")
	}
	for _, c := range visibleCommands(app.Commands) {
		text := render("mailmig-" + c.Name + ".8")
		if !strings.Contains(text, "mailmig-"+c.Name+" - "+c.Usage[:min(20, len(c.Usage))]) {
			t.Errorf("mailmig-%s.8: NAME line missing:\n%s", c.Name, text)
		}
		check := func(what string, flags []string) {
			for _, f := range flags {
				if !strings.Contains(text, f) {
					t.Errorf("mailmig-%s.8 lacks %s %s", c.Name, what, f)
				}
			}
		}
		check("flag", flagWords(c.Flags))
		for _, s := range visibleCommands(c.Subcommands) {
			if !strings.Contains(text, "mailmig [global options] "+c.Name+" "+s.Name) {
				t.Errorf("mailmig-%s.8: no synopsis for %s %s", c.Name, c.Name, s.Name)
			}
			check("flag of "+s.Name, flagWords(s.Flags))
		}
	}
	main := render("mailmig.8")
	for _, f := range flagWords(app.Flags) {
		if !strings.Contains(main, f) {
			t.Errorf("mailmig.8 lacks global flag %s", f)
		}
	}
	for _, c := range visibleCommands(app.Commands) {
		if !strings.Contains(main, "mailmig-"+c.Name+"(8)") {
			t.Errorf("mailmig.8 does not list mailmig-%s(8)", c.Name)
		}
	}
	cfg := render("mailmig.toml.5")
	key := regexp.MustCompile(`^([a-z_]+) = `)
	section := regexp.MustCompile(`^\[[a-z]+\]$`)
	for _, l := range strings.Split(config.DefaultText(), "\n") {
		if m := key.FindStringSubmatch(l); m != nil && !strings.Contains(cfg, m[1]+" = ") {
			t.Errorf("mailmig.toml.5 lacks key %s", m[1])
		}
		if section.MatchString(l) && !strings.Contains(cfg, l) {
			t.Errorf("mailmig.toml.5 lacks section %s", l)
		}
	}
}

// TestCompletion: the shipped bash and zsh completion complete every
// command path's subcommands and flags, computed from the same command
// tree.
func TestCompletion(t *testing.T) {
	bash := requireTool(t, "bash")
	zsh := requireTool(t, "zsh")
	dir := t.TempDir()
	bashFile, zshFile := filepath.Join(dir, "mailmig.bash"), filepath.Join(dir, "_mailmig")
	mustMailmig(t, "", "gendoc", "--bash", bashFile, "--zsh", zshFile)
	if out, err := exec.Command(zsh, "-n", zshFile).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v\n%s", err, out)
	}
	app := newApp()
	type tc struct {
		words []string // typed words after "mailmig", the last one being completed
		want  []string
	}
	var cases []tc
	cases = append(cases, tc{[]string{"--data", "/tmp/x", ""}, nil})
	for _, p := range commandPaths(app.Commands, nil) {
		c := lookupCommand(app.Commands, p)
		var want []string
		for _, s := range visibleCommands(c.Subcommands) {
			want = append(want, s.Name)
		}
		cases = append(cases, tc{append(append([]string{}, p...), ""), append(want, append(flagWords(c.Flags), "--help")...)})
		cases = append(cases, tc{append(append([]string{}, p...), "--"), nil})
	}
	for _, c := range visibleCommands(app.Commands) {
		want := []string{}
		for _, s := range visibleCommands(app.Commands) {
			if strings.HasPrefix(s.Name, c.Name[:2]) {
				want = append(want, s.Name)
			}
		}
		cases = append(cases, tc{[]string{c.Name[:2]}, want})
	}
	var script strings.Builder
	script.WriteString("source " + bashFile + "\n")
	for _, c := range cases {
		script.WriteString("COMP_WORDS=(mailmig")
		for _, w := range c.words {
			script.WriteString(" '" + w + "'")
		}
		script.WriteString(")\nCOMP_CWORD=" + strconv.Itoa(len(c.words)) + "\n_mailmig\necho \"${COMPREPLY[*]}\"\n")
	}
	out, err := exec.Command(bash, "-c", script.String()).Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(cases) {
		t.Fatalf("%d answers for %d cases:\n%s", len(lines), len(cases), out)
	}
	for i, c := range cases {
		got := strings.Fields(lines[i])
		want := c.want
		if c.want == nil {
			continue // checked below (flags only)
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("bash: mailmig %s<TAB> = %v, want %v", strings.Join(c.words, " "), got, want)
		}
	}
	// "--<TAB>" completes exactly the flags of the command path.
	for i, c := range cases {
		if c.want != nil || len(c.words) < 2 || c.words[len(c.words)-1] != "--" {
			continue
		}
		cmd := lookupCommand(app.Commands, c.words[:len(c.words)-1])
		var want []string
		for _, f := range append(flagWords(cmd.Flags), "--help") {
			if strings.HasPrefix(f, "--") {
				want = append(want, f)
			}
		}
		if got := strings.Fields(lines[i]); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("bash: mailmig %s<TAB> = %v, want %v", strings.Join(c.words, " "), got, want)
		}
	}
	// zsh: the function run with compadd/_describe standing in for the
	// completion system, which prints what it would offer.
	zshScript := `_describe() { print -r -- "D ${(j: :)${(@)${(P)4}%%:*}}"; }
compadd() { print -r -- "C ${(j: :)${(P)2}}"; }
_files() { print -r -- F; }
source ` + zshFile + ` 2>/dev/null
words=(mailmig user ''); CURRENT=3; PREFIX=''; _mailmig
words=(mailmig serve --l); CURRENT=3; PREFIX='--l'; _mailmig
words=(mailmig --data /x ''); CURRENT=4; PREFIX=''; _mailmig
`
	zout, err := exec.Command(zsh, "-f", "-c", zshScript).CombinedOutput()
	if err != nil {
		t.Fatalf("zsh: %v\n%s", err, zout)
	}
	zl := strings.Split(strings.TrimSpace(string(zout)), "\n")
	var userSubs, topCmds []string
	for _, s := range visibleCommands(lookupCommand(app.Commands, []string{"user"}).Subcommands) {
		userSubs = append(userSubs, s.Name)
	}
	for _, s := range visibleCommands(app.Commands) {
		topCmds = append(topCmds, s.Name)
	}
	serveFlags := append(flagWords(lookupCommand(app.Commands, []string{"serve"}).Flags), "--help")
	sort.Strings(serveFlags)
	wantZ := []string{"D " + strings.Join(userSubs, " "), "C " + strings.Join(serveFlags, " "), "D " + strings.Join(topCmds, " ")}
	if len(zl) < 3 || zl[len(zl)-3] != wantZ[0] || zl[len(zl)-2] != wantZ[1] || zl[len(zl)-1] != wantZ[2] {
		t.Errorf("zsh completion:\n%s\nwant:\n%s", zout, strings.Join(wantZ, "\n"))
	}
	if _, err := os.Stat(zshFile); err != nil {
		t.Fatal(err)
	}
}
