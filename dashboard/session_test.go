package dashboard

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestSessionSealing(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	s, err := newSealer("0123456789abcdef-secret", clock)
	if err != nil {
		t.Fatal(err)
	}
	other, err := newSealer("another-secret-of-16+", clock)
	if err != nil {
		t.Fatal(err)
	}
	sess := s.newSession("the-key")
	value, err := s.seal(sess)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(value, "the-key") {
		t.Fatal("the sealed cookie shows the key")
	}
	got, err := s.open(value)
	if err != nil || got.Key != "the-key" || got.CSRF != sess.CSRF || got.CSRF == "" {
		t.Fatalf("open = %+v, %v; want the session back", got, err)
	}
	flipped := []byte(value)
	flipped[len(flipped)/2] ^= 1
	tampered := string(flipped)
	for name, v := range map[string]string{
		"tampered":       tampered,
		"empty":          "",
		"not base64":     "%%%",
		"too short":      "abc",
		"another secret": mustSeal(t, other, other.newSession("k")),
	} {
		if _, err := s.open(v); !errors.Is(err, errNoSession) {
			t.Errorf("%s: open = %v, want errNoSession", name, err)
		}
	}
	now = now.Add(SessionTTL)
	if _, err := s.open(value); !errors.Is(err, errNoSession) {
		t.Errorf("an expired session opens: %v", err)
	}
	if _, err := newSealer("short", clock); err == nil {
		t.Error("a secret of 5 characters is taken")
	}
}

func mustSeal(t *testing.T, s *sealer, sess *session) string {
	t.Helper()
	v, err := s.seal(sess)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCheckOrigin(t *testing.T) {
	for _, tc := range []struct {
		name         string
		site, origin string
		wantRefused  bool
	}{
		{name: "no headers (curl)"},
		{name: "same origin", site: "same-origin", origin: "https://dashboard.flynn.test"},
		{name: "typed in", site: "none"},
		{name: "another site", site: "cross-site", origin: "https://evil.example", wantRefused: true},
		{name: "a sibling subdomain", site: "same-site", origin: "https://app.flynn.test", wantRefused: true},
		{name: "origin alone, another host", origin: "https://evil.example", wantRefused: true},
		{name: "opaque origin", origin: "null", wantRefused: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "https://dashboard.flynn.test/apps", nil)
			if tc.site != "" {
				r.Header.Set("Sec-Fetch-Site", tc.site)
			}
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			if err := checkOrigin(r); (err != nil) != tc.wantRefused {
				t.Errorf("checkOrigin = %v, want refused %v", err, tc.wantRefused)
			}
		})
	}
}

// FuzzOpenSession: a cookie is anyone's input; opening one never panics
// and never yields a session it was not sealed with.
func FuzzOpenSession(f *testing.F) {
	s, err := newSealer("fuzzing-secret-0123456789", time.Now)
	if err != nil {
		f.Fatal(err)
	}
	good, err := s.seal(s.newSession("k"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, v string) {
		sess, err := s.open(v)
		if err == nil && v != good {
			// Only a value sealed by s opens; the fuzzer cannot forge one.
			if sess.Key != "k" {
				t.Fatalf("opened a forged session %+v", sess)
			}
		}
	})
}

// FuzzFlash: the flash cookie is read back from the browser.
func FuzzFlash(f *testing.F) {
	f.Add("eyJ0IjoiaGkifQ")
	f.Add("%%")
	f.Fuzz(func(t *testing.T, v string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Cookie", flashCookie+"="+v)
		_ = takeFlash(httptest.NewRecorder(), r)
	})
}
