package dashboard

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// CookieName is the session cookie.
const CookieName = "flynn_session"

// SessionTTL is how long a sign-in lasts. A session lives in its cookie
// alone (see sealer), so signing out cannot recall a copy of the cookie:
// the expiry sealed inside it bounds what a stolen one is worth.
const SessionTTL = 12 * time.Hour

// session is what the cookie carries, sealed: the key the person signed
// in with, which every controller request of theirs is made with, and
// the token their forms must echo.
type session struct {
	// Key is the controller key or a person's API key.
	Key string `json:"k"`
	// CSRF is the token every change must carry (csrfField or csrfHeader).
	CSRF string `json:"c"`
	// Expires is when the session ends, in Unix seconds.
	Expires int64 `json:"e"`
}

// errNoSession is a request without a valid session cookie.
var errNoSession = errors.New("not signed in")

// sealer seals sessions into cookies with AES-256-GCM, under a key derived
// from the dashboard's session secret, so that any instance of the
// dashboard (and one restarted) reads them and nobody can read or forge
// one: the cookie carries a controller key.
type sealer struct {
	aead cipher.AEAD
	now  func() time.Time
}

func newSealer(secret string, now func() time.Time) (*sealer, error) {
	if len(secret) < 16 {
		return nil, errors.New("the session secret must be at least 16 characters")
	}
	k := sha256.Sum256([]byte("flynn-dashboard-session\x00" + secret))
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, fmt.Errorf("session cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("session cipher: %w", err)
	}
	return &sealer{aead: aead, now: now}, nil
}

// newSession is a session for key, with a fresh CSRF token.
func (s *sealer) newSession(key string) *session {
	return &session{Key: key, CSRF: randomToken(), Expires: s.now().Add(SessionTTL).Unix()}
}

func (s *sealer) seal(sess *session) (string, error) {
	plain, err := json.Marshal(sess)
	if err != nil {
		return "", fmt.Errorf("seal session: %w", err)
	}
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce) // never fails: see crypto/rand.Read
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(CookieName))), nil
}

// open reads a cookie's value; anything not sealed by this secret, or
// expired, is errNoSession.
func (s *sealer) open(value string) (*session, error) {
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return nil, errNoSession
	}
	plain, err := s.aead.Open(nil, raw[:s.aead.NonceSize()], raw[s.aead.NonceSize():], []byte(CookieName))
	if err != nil {
		return nil, errNoSession
	}
	var sess session
	if err := json.Unmarshal(plain, &sess); err != nil || sess.Key == "" || sess.CSRF == "" {
		return nil, errNoSession
	}
	if s.now().Unix() >= sess.Expires {
		return nil, errNoSession
	}
	return &sess, nil
}

// sessionCookie is the cookie that carries value: HttpOnly, so no script
// reads the key; Secure, so it never crosses plain HTTP; SameSite=Strict,
// so no other site's page sends it, not even a link followed from there.
func sessionCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: CookieName, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode}
}

// randomToken is 128 random bits as text.
func randomToken() string { return rand.Text() }

const (
	// csrfField is the CSRF token's form field.
	csrfField = "csrf"
	// csrfHeader carries the CSRF token of the page's scripted requests.
	csrfHeader = "X-CSRF-Token"
)

// errCrossOrigin is a change asked for by another site's page.
var errCrossOrigin = errors.New("refused: the request came from another site")

// checkOrigin refuses a change another site's page asks for. The browser
// says where a request comes from in Sec-Fetch-Site and Origin; a request
// that names neither (curl, an old browser) passes here and must still
// carry the session's CSRF token.
func checkOrigin(r *http.Request) error {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return errCrossOrigin
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host != r.Host {
		return errCrossOrigin
	}
	return nil
}

// checkCSRF reports whether r carries sess's token, in its form or header.
func checkCSRF(r *http.Request, sess *session) bool {
	got := r.Header.Get(csrfHeader)
	if got == "" {
		got = r.PostFormValue(csrfField)
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRF)) == 1
}
