package web

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"mailmig/mailstore/acl"
)

// Sharing levels offered on the page, as RFC 4314 rights.
var shareLevels = []struct{ Name, Rights, Text string }{
	{"read", "lrs", "read"},
	{"write", "lrswite", "read and change (flags, delete messages)"},
	{"add", "lrswipte", "read, change and add messages"},
	{"full", "lrswipkxtea", "everything, including sharing it further"},
}

type grant struct {
	Who, Rights, Words string
}

type folderShare struct {
	Name   string
	Grants []grant
}

type foldersData struct {
	Folders []folderShare
	Levels  []struct{ Name, Rights, Text string }
}

// foldersPage shows the folder tree with who else may use each folder
// (the dovecot-acl files IMAP's GETACL reads).
func (s *Server) foldersPage(w http.ResponseWriter, r *http.Request, sess *session) {
	st, err := s.opts.Backend.Store(sess.user)
	if err != nil {
		s.fail(w, sess, err)
		return
	}
	defer st.Close()
	infos, err := st.Folders()
	if err != nil {
		s.fail(w, sess, err)
		return
	}
	d := foldersData{Levels: shareLevels}
	for _, fi := range infos {
		f, err := st.Folder(fi.Name)
		if err != nil {
			s.fail(w, sess, err)
			return
		}
		a, err := acl.Read(f.Dir())
		if err != nil {
			s.fail(w, sess, err)
			return
		}
		fs := folderShare{Name: fi.Name}
		for id, rights := range a {
			who := strings.TrimPrefix(id, "user=")
			if id == "owner" || strings.HasPrefix(id, "-") {
				continue // negative rights (RFC 4314 §2) are IMAP's (SETACL)
			}
			fs.Grants = append(fs.Grants, grant{who, rights, acl.Describe(rights)})
		}
		slices.SortFunc(fs.Grants, func(a, b grant) int { return strings.Compare(a.Who, b.Who) })
		d.Folders = append(d.Folders, fs)
	}
	slices.SortFunc(d.Folders, func(a, b folderShare) int { return strings.Compare(a.Name, b.Name) })
	s.render(w, http.StatusOK, "folders.html", sess, page{Title: "Folders and sharing", Data: d})
}

// folderShare grants a sharing level on a folder to another user, or
// takes it back (level "none").
func (s *Server) folderShareSave(w http.ResponseWriter, r *http.Request, sess *session) {
	folder, who, level := r.PostFormValue("folder"), strings.TrimSpace(r.PostFormValue("who")), r.PostFormValue("level")
	rights := ""
	for _, l := range shareLevels {
		if l.Name == level {
			rights = l.Rights
		}
	}
	if rights == "" && level != "none" {
		http.Error(w, "unknown sharing level", http.StatusBadRequest)
		return
	}
	if who == sess.user || who == "owner" {
		s.redirect(w, r, sess, "/folders", "You always have every right on your own folders.")
		return
	}
	if _, err := acl.ID(who); err != nil || len(who) > 256 {
		s.redirect(w, r, sess, "/folders", fmt.Sprintf("%q is not a user name.", who))
		return
	}
	st, err := s.opts.Backend.Store(sess.user)
	if err != nil {
		s.fail(w, sess, err)
		return
	}
	defer st.Close()
	f, err := st.Folder(folder)
	if err != nil {
		s.redirect(w, r, sess, "/folders", fmt.Sprintf("There is no folder %q.", folder))
		return
	}
	if err := acl.Set(f.Dir(), who, rights); err != nil {
		s.fail(w, sess, err)
		return
	}
	if s.opts.ACLChanged != nil {
		s.opts.ACLChanged()
	}
	s.log.Info("web: acl changed", "user", sess.user, "folder", folder, "identifier", who, "rights", rights)
	if rights == "" {
		s.redirect(w, r, sess, "/folders", fmt.Sprintf("%s no longer sees %s.", who, folder))
		return
	}
	s.redirect(w, r, sess, "/folders", fmt.Sprintf("%s may now %s in %s; it appears to them as shared/%s/%s.", who, acl.Describe(rights), folder, sess.user, folder))
}
