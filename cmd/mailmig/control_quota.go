package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os/user"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"mailmig/cmd/mailmig/config"
)

// A user's own quota without database access (issue 9 item 7). The new
// store and the state database belong to the server's user alone
// (docs/deploying.md), so `mailmig quota` without USER, run by anyone,
// asks the running server over the control socket. The server answers
// op "quota" for the passwd name of the caller's uid (SO_PEERCRED) and
// for nobody else; root and the server's user may name any user.

// controlQuota answers op "quota" for a peer with uid.
func (e *env) controlQuota(req controlRequest, uid uint32, admin bool) controlReply {
	name := req.User
	if name != "" && !admin {
		return controlReply{Error: "permission denied: you may see only your own quota (run mailmig quota without a user name)"}
	}
	if name == "" {
		u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
		if err != nil {
			return controlReply{Error: fmt.Sprintf("quota: uid %d has no passwd entry on the mail server", uid)}
		}
		name = u.Username
	}
	var b strings.Builder
	if err := printQuota(&b, e, name); err != nil {
		e.log.Info("quota asked over the control socket", "user", name, "uid", uid, "err", err)
		return controlReply{Error: err.Error()}
	}
	return controlReply{Text: b.String()}
}

// ownQuota is `mailmig quota` without USER: the caller's own report from
// the running server. The configuration (root:mailmig 0640) is usually
// not readable by users; then the default control socket is asked.
func ownQuota(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if errors.Is(err, fs.ErrPermission) {
		cfg, err = config.Default(), nil
	}
	if err != nil {
		return err
	}
	rep, err := controlCall(cfg, controlRequest{Op: "quota"})
	if errors.Is(err, errNotServing) {
		return withExit(75, err)
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprint(c.App.Writer, rep.Text)
	return err
}
