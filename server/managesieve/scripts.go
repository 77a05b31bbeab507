package managesieve

import (
	"errors"
	"strconv"

	"mailmig/server/sieve"
)

// scriptCommand runs the commands of the authenticated state that work
// on the user's scripts (RFC 5804 §2.5-§2.12).
func (c *conn) scriptCommand(cmd *Command) {
	want := map[string]int{
		"HAVESPACE": 2, "PUTSCRIPT": 2, "LISTSCRIPTS": 0, "SETACTIVE": 1,
		"GETSCRIPT": 1, "DELETESCRIPT": 1, "RENAMESCRIPT": 2, "CHECKSCRIPT": 1,
	}[cmd.Name]
	if len(cmd.Args) != want {
		c.reply("NO", "", cmd.Name+" takes "+strconv.Itoa(want)+" argument(s)")
		return
	}
	a := cmd.Args
	st := c.store
	var err error
	switch cmd.Name {
	case "HAVESPACE": // §2.5
		var size int64
		size, err = strconv.ParseInt(a[1], 10, 64)
		if err != nil || size < 0 {
			c.reply("NO", "", "size must be a number")
			return
		}
		if err = st.HaveSpace(a[0], size); err == nil {
			c.reply("OK", "", "putscript would succeed")
			return
		}
	case "PUTSCRIPT": // §2.6
		if err = st.Put(a[0], []byte(a[1])); err == nil {
			c.s.log().Info("managesieve: script stored", "user", c.user, "script", a[0], "bytes", len(a[1]))
			c.reply("OK", "", "script stored")
			return
		}
	case "CHECKSCRIPT": // §2.12
		if st.MaxScriptSize > 0 && int64(len(a[0])) > st.MaxScriptSize {
			err = sieve.ErrScriptTooBig
		} else if err = st.Validate([]byte(a[0])); err == nil {
			c.reply("OK", "", "script is valid")
			return
		}
	case "LISTSCRIPTS": // §2.7
		var list []sieve.ScriptInfo
		if list, err = st.List(); err == nil {
			for _, s := range list {
				c.writeString(s.Name)
				if s.Active {
					c.w.WriteString(" ACTIVE")
				}
				c.w.WriteString("\r\n")
			}
			c.reply("OK", "", "listscripts completed")
			return
		}
	case "SETACTIVE": // §2.8
		if err = st.SetActive(a[0]); err == nil {
			c.s.log().Info("managesieve: active script set", "user", c.user, "script", a[0])
			c.reply("OK", "", "setactive completed")
			return
		}
	case "GETSCRIPT": // §2.9: the script is always sent as a literal
		var b []byte
		if b, err = st.Get(a[0]); err == nil {
			c.w.WriteString("{" + strconv.Itoa(len(b)) + "}\r\n")
			c.w.Write(b)
			c.w.WriteString("\r\n")
			c.reply("OK", "", "getscript completed")
			return
		}
	case "DELETESCRIPT": // §2.10
		if err = st.Delete(a[0]); err == nil {
			c.s.log().Info("managesieve: script deleted", "user", c.user, "script", a[0])
			c.reply("OK", "", "deletescript completed")
			return
		}
	case "RENAMESCRIPT": // §2.11.1
		if err = st.Rename(a[0], a[1]); err == nil {
			c.reply("OK", "", "renamescript completed")
			return
		}
	}
	c.replyError(cmd.Name, err)
}

// replyError turns a storage or validation error into a NO reply with the
// matching response code (RFC 5804 §1.3).
func (c *conn) replyError(cmdName string, err error) {
	var se *sieve.ScriptError
	switch {
	case errors.As(err, &se):
		c.reply("NO", "", se.Error())
	case errors.Is(err, sieve.ErrNoSuchScript):
		c.reply("NO", "NONEXISTENT", "there is no script by that name")
	case errors.Is(err, sieve.ErrScriptExists):
		c.reply("NO", "ALREADYEXISTS", "a script by that name already exists")
	case errors.Is(err, sieve.ErrActiveScript):
		c.reply("NO", "ACTIVE", "the active script cannot be deleted")
	case errors.Is(err, sieve.ErrInvalidName):
		c.reply("NO", "", "invalid script name")
	case errors.Is(err, sieve.ErrScriptTooBig):
		c.reply("NO", "QUOTA/MAXSIZE", "script too big")
	case errors.Is(err, sieve.ErrTooManyScripts):
		c.reply("NO", "QUOTA/MAXSCRIPTS", "too many scripts")
	default:
		c.s.log().Error("managesieve: "+cmdName, "user", c.user, "err", err)
		c.reply("NO", "TRYLATER", "internal error, try again later")
	}
}
