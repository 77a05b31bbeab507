package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"
)

// cookieName is the session cookie. The __Host- prefix makes browsers
// refuse it unless it is Secure, has Path=/ and no Domain (RFC 6265bis
// §4.1.3.2), so no other host of the site can plant one.
const cookieName = "__Host-mailmig"

// maxSessions bounds the table (each session is ~200 bytes).
const maxSessions = 100000

// session is one login. The CSRF token is per session and checked on
// every POST; a new login always makes a new session id (no fixation).
type session struct {
	id      string
	user    string
	csrf    string
	expires time.Time
	flash   string
}

type sessions struct {
	ttl time.Duration
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*session
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{ttl: ttl, now: now, m: map[string]*session{}}
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session for user.
func (ss *sessions) create(user string) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := ss.now()
	if len(ss.m) >= maxSessions {
		for id, s := range ss.m {
			if now.After(s.expires) {
				delete(ss.m, id)
			}
		}
	}
	s := &session{id: randomToken(), user: user, csrf: randomToken(), expires: now.Add(ss.ttl)}
	ss.m[s.id] = s
	return s
}

// get returns the live session of r, extending it; nil if none.
func (ss *sessions) get(r *http.Request) *session {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[c.Value]
	if s == nil {
		return nil
	}
	now := ss.now()
	if now.After(s.expires) {
		delete(ss.m, s.id)
		return nil
	}
	s.expires = now.Add(ss.ttl)
	return s
}

func (ss *sessions) drop(s *session) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, s.id)
}

// setFlash and takeFlash carry one message across a redirect.
func (ss *sessions) setFlash(s *session, msg string) {
	ss.mu.Lock()
	s.flash = msg
	ss.mu.Unlock()
}

func (ss *sessions) takeFlash(s *session) string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	f := s.flash
	s.flash = ""
	return f
}

func (s *Server) setCookie(w http.ResponseWriter, sess *session) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: sess.id, Path: "/",
		MaxAge: int(s.opts.SessionTTL / time.Second), Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
}

func clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// validCSRF checks the form's token against the session's in constant time.
func validCSRF(sess *session, r *http.Request) bool {
	got := r.PostFormValue("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(sess.csrf)) == 1
}

type handler func(w http.ResponseWriter, r *http.Request, sess *session)

// user wraps a page that needs a login: without one, GETs go to the login
// page and POSTs are refused; every POST must carry the CSRF token.
func (s *Server) user(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess := s.sessions.get(r)
		if sess == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login", http.StatusSeeOther)
				return
			}
			http.Error(w, "not logged in", http.StatusForbidden)
			return
		}
		if r.Method == http.MethodPost && !validCSRF(sess, r) {
			s.log.Warn("web: form without a valid CSRF token refused", "user", sess.user, "path", r.URL.Path, "remote", remoteIP(r))
			http.Error(w, "this form has expired; reload the page and try again", http.StatusForbidden)
			return
		}
		h(w, r, sess)
	}
}

// postmaster wraps a dashboard page.
func (s *Server) postmaster(h handler) http.HandlerFunc {
	return s.user(func(w http.ResponseWriter, r *http.Request, sess *session) {
		if !s.isPostmaster(sess.user) || s.opts.Migration == nil {
			http.Error(w, "this page is for the postmaster", http.StatusForbidden)
			return
		}
		h(w, r, sess)
	})
}
