package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"mailmig/cmd/mailmig/config"
)

// gendocCommand writes the man pages and shell completion files from the
// command definitions (hidden: `make man`, `make install` and `make deb`
// run it, so the shipped pages always describe the binary beside them).
func gendocCommand() *cli.Command {
	return &cli.Command{
		Name:   "gendoc",
		Hidden: true,
		Usage:  "write man pages and shell completion generated from the commands",
		Description: `Writes mailmig.8, mailmig-CMD.8 for every command and mailmig.toml.5
into the --man directory, and the bash and zsh completion files.

Examples:
   mailmig gendoc --man build/man --bash build/mailmig.bash --zsh build/_mailmig`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "man", Usage: "write man pages into `DIR`"},
			&cli.StringFlag{Name: "bash", Usage: "write the bash completion to `FILE`"},
			&cli.StringFlag{Name: "zsh", Usage: "write the zsh completion to `FILE`"},
		},
		Action: func(c *cli.Context) error {
			if c.String("man") == "" && c.String("bash") == "" && c.String("zsh") == "" {
				return withExit(64, errors.New("gendoc: give --man, --bash or --zsh"))
			}
			app := c.App
			files := map[string][]byte{}
			if dir := c.String("man"); dir != "" {
				var pages []manCommand
				for _, cmd := range visibleCommands(app.Commands) {
					pages = append(pages, manCommand{path: []string{app.Name, cmd.Name}, cmd: cmd})
				}
				var b bytes.Buffer
				writeMainPage(&b, app, pages)
				files[filepath.Join(dir, "mailmig.8")] = b.Bytes()
				for _, p := range pages {
					var b bytes.Buffer
					writeCommandPage(&b, app, p)
					files[filepath.Join(dir, p.pageName()+".8")] = b.Bytes()
				}
				b = bytes.Buffer{}
				writeConfigPage(&b, app.Version, config.DefaultText())
				files[filepath.Join(dir, "mailmig.toml.5")] = b.Bytes()
			}
			if p := c.String("bash"); p != "" {
				var b bytes.Buffer
				writeBashCompletion(&b, app)
				files[p] = b.Bytes()
			}
			if p := c.String("zsh"); p != "" {
				var b bytes.Buffer
				writeZshCompletion(&b, app)
				files[p] = b.Bytes()
			}
			for p, b := range files {
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					return err
				}
				tmp := p + ".tmp"
				if err := os.WriteFile(tmp, b, 0o644); err != nil {
					return err
				}
				if err := os.Rename(tmp, p); err != nil {
					return err
				}
			}
			return nil
		},
	}
}
