package signed

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

const key = "cluster-key"

var now = time.Unix(1_800_000_000, 0)

// signQuery signs method and path for an hour from now and returns the
// query.
func signQuery(t testing.TB, method, path string) url.Values {
	t.Helper()
	q, err := Sign(key, method, path, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestVerify(t *testing.T) {
	good := signQuery(t, "PUT", "apps/a/slug.tgz")
	with := func(name, value string) string {
		q := url.Values{}
		for k, v := range good {
			q[k] = append([]string(nil), v...)
		}
		q.Set(name, value)
		return q.Encode()
	}
	tests := []struct {
		name    string
		key     string
		method  string
		path    string
		query   string
		now     time.Time
		wantErr error // nil: verifies
	}{
		{"as signed", key, "PUT", "apps/a/slug.tgz", good.Encode(), now, nil},
		{"other parameters are ignored", key, "PUT", "apps/a/slug.tgz", good.Encode() + "&x-amz=1", now, nil},
		{"just before expiry", key, "PUT", "apps/a/slug.tgz", good.Encode(), now.Add(time.Hour - time.Second), nil},
		{"at expiry", key, "PUT", "apps/a/slug.tgz", good.Encode(), now.Add(time.Hour), ErrExpired},
		{"long expired", key, "PUT", "apps/a/slug.tgz", good.Encode(), now.Add(1000 * time.Hour), ErrExpired},
		{"other method", key, "GET", "apps/a/slug.tgz", good.Encode(), now, ErrBadSignature},
		{"HEAD is not GET either", key, "HEAD", "apps/a/slug.tgz", signQuery(t, "GET", "apps/a/slug.tgz").Encode(), now, ErrBadSignature},
		{"lower-case method", key, "put", "apps/a/slug.tgz", good.Encode(), now, ErrBadSignature},
		{"other path", key, "PUT", "apps/b/slug.tgz", good.Encode(), now, ErrBadSignature},
		{"path prefix", key, "PUT", "apps/a/slug.tgz/x", good.Encode(), now, ErrBadSignature},
		{"invalid path", key, "PUT", "apps/../a/slug.tgz", good.Encode(), now, ErrBadSignature},
		{"other key", "other-key", "PUT", "apps/a/slug.tgz", good.Encode(), now, ErrBadSignature},
		{"no key", "", "PUT", "apps/a/slug.tgz", good.Encode(), now, ErrBadSignature},
		{"expiry moved", key, "PUT", "apps/a/slug.tgz", with(ParamExpires, "1900000000"), now, ErrBadSignature},
		{"nonce changed", key, "PUT", "apps/a/slug.tgz", with(ParamNonce, "AAAAAAAAAAAAAAAAAAAAAAAAAA"), now, ErrBadSignature},
		{"signature changed", key, "PUT", "apps/a/slug.tgz", with(ParamSig, strings.Repeat("A", 43)), now, ErrBadSignature},
		{"no parameters", key, "GET", "apps/a/slug.tgz", "", now, ErrUnsigned},
		{"unrelated query", key, "GET", "apps/a/slug.tgz", "download=1", now, ErrUnsigned},
		{"no signature", key, "PUT", "apps/a/slug.tgz", "expires=" + good.Get(ParamExpires) + "&nonce=" + good.Get(ParamNonce), now, ErrMalformed},
		{"signature twice", key, "PUT", "apps/a/slug.tgz", good.Encode() + "&sig=" + good.Get(ParamSig), now, ErrMalformed},
		{"expiry with leading zero", key, "PUT", "apps/a/slug.tgz", with(ParamExpires, "0"+good.Get(ParamExpires)), now, ErrMalformed},
		{"expiry with a sign", key, "PUT", "apps/a/slug.tgz", with(ParamExpires, "+"+good.Get(ParamExpires)), now, ErrMalformed},
		{"negative expiry", key, "PUT", "apps/a/slug.tgz", with(ParamExpires, "-5"), now, ErrMalformed},
		{"expiry overflows", key, "PUT", "apps/a/slug.tgz", with(ParamExpires, "99999999999999999999"), now, ErrMalformed},
		{"short nonce", key, "PUT", "apps/a/slug.tgz", with(ParamNonce, "abc"), now, ErrMalformed},
		{"nonce with a slash", key, "PUT", "apps/a/slug.tgz", with(ParamNonce, "AAAAAAAA/AAAAAAAAAAAAAAAAA"), now, ErrMalformed},
		{"padded signature", key, "PUT", "apps/a/slug.tgz", with(ParamSig, good.Get(ParamSig)+"="), now, ErrMalformed},
		{"short signature", key, "PUT", "apps/a/slug.tgz", with(ParamSig, "AAAA"), now, ErrMalformed},
		{"bad escape", key, "PUT", "apps/a/slug.tgz", good.Encode() + "&%zz", now, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := Verify(tt.key, tt.method, tt.path, tt.query, tt.now)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if g != nil {
					t.Fatalf("grant %+v with an error", g)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v, want none", err)
			}
			want := Grant{Method: tt.method, Path: tt.path, Expires: now.Add(time.Hour), Nonce: good.Get(ParamNonce)}
			if *g != want {
				t.Fatalf("grant = %+v, want %+v", *g, want)
			}
		})
	}
}

func TestSign(t *testing.T) {
	tests := []struct {
		name, key, method, path string
		expires                 time.Time
		wantErr                 string
	}{
		{"leading slash is the same path", key, "GET", "/apps/a", now, ""},
		{"no key", "", "GET", "apps/a", now, "no key"},
		{"bad path", key, "GET", "apps/../a", now, "dot segment"},
		{"bad method", key, "get", "apps/a", now, "invalid method"},
		{"before 1970", key, "GET", "apps/a", time.Unix(0, 0), "not after 1970"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Sign(tt.key, tt.method, tt.path, tt.expires)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Verify(tt.key, tt.method, strings.TrimPrefix(tt.path, "/"), q.Encode(), now.Add(-time.Second)); err != nil {
				t.Fatalf("own signature does not verify: %v", err)
			}
		})
	}
}

func TestNoncesDiffer(t *testing.T) {
	a, b := signQuery(t, "GET", "x"), signQuery(t, "GET", "x")
	if a.Get(ParamNonce) == b.Get(ParamNonce) || a.Get(ParamSig) == b.Get(ParamSig) {
		t.Fatalf("two signatures of one request share nonce or signature: %v, %v", a, b)
	}
}

func TestURL(t *testing.T) {
	u, err := URL("http://blobstore.example/", key, "GET", "/apps/a/slug.tgz", now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Host != "blobstore.example" || parsed.Path != "/apps/a/slug.tgz" || parsed.User != nil {
		t.Fatalf("URL = %s", u)
	}
	if _, err := Verify(key, "GET", "apps/a/slug.tgz", parsed.RawQuery, now); err != nil {
		t.Fatalf("URL %s does not verify: %v", u, err)
	}
	for _, base := range []string{"http://u:p@blobstore.example", "http://blobstore.example/?x=1"} {
		if _, err := URL(base, key, "GET", "a", now); err == nil {
			t.Errorf("URL(%q) succeeded", base)
		}
	}
}

// FuzzVerify feeds the verifier arbitrary queries: it must never panic,
// and whatever it accepts must be exactly what was signed.
func FuzzVerify(f *testing.F) {
	q := signQuery(f, "GET", "apps/a/slug.tgz")
	f.Add("GET", "apps/a/slug.tgz", q.Encode())
	f.Add("PUT", "apps/a/slug.tgz", q.Encode())
	f.Add("GET", "apps/a/slug.tgz", q.Encode()+"&sig=x")
	f.Add("GET", "a", "expires=1&nonce=AAAAAAAAAAAAAAAA&sig=")
	f.Add("GET", "a", "expires=%&nonce;sig")
	f.Add("GET", "a", "")
	f.Fuzz(func(t *testing.T, method, path, query string) {
		g, err := Verify(key, method, path, query, now)
		if err != nil {
			if g != nil {
				t.Fatalf("grant %+v with error %v", g, err)
			}
			return
		}
		if g.Method != method || g.Path != path || !now.Before(g.Expires) {
			t.Fatalf("grant %+v for %s %s", g, method, path)
		}
		parsed, _ := url.ParseQuery(query)
		if parsed.Get(ParamNonce) != g.Nonce {
			t.Fatalf("grant nonce %q, query %q", g.Nonce, query)
		}
	})
}

// TestResign: a URL signed with one key opens with another once re-signed,
// for the same blob and until the same time; an unsigned URL is left, a
// malformed signature refused.
func TestResign(t *testing.T) {

	expires := now.Add(time.Hour)
	old, err := URL("http://blobstore.example.test", "old-key", "GET", "apps/a/slug.tgz", expires)
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := Resign(old, "new-key", "GET")
	if err != nil || !ok {
		t.Fatalf("Resign = %q, %v, %v", got, ok, err)
	}
	u, err := url.Parse(got)
	if err != nil || u.Host != "blobstore.example.test" || u.Path != "/apps/a/slug.tgz" {
		t.Fatalf("re-signed URL %q (%v)", got, err)
	}
	g, err := Verify("new-key", "GET", "apps/a/slug.tgz", u.RawQuery, now)
	if err != nil || !g.Expires.Equal(expires) {
		t.Fatalf("the re-signed URL: %+v, %v; want it to open with the new key until %s", g, err, expires)
	}
	if _, err := Verify("old-key", "GET", "apps/a/slug.tgz", u.RawQuery, now); err == nil {
		t.Fatal("the re-signed URL opens with the old key")
	}
	for _, s := range []string{"http://blobstore.example.test/apps/a/slug.tgz", "not a url", "/relative?sig=x"} {
		if got, ok, err := Resign(s, "new-key", "GET"); ok || err != nil {
			t.Errorf("Resign(%q) = %q, %v, %v; want it left", s, got, ok, err)
		}
	}
	if _, _, err := Resign("http://b/apps/a?expires=soon&nonce=x&sig=y", "new-key", "GET"); err == nil {
		t.Error("a malformed signature was re-signed")
	}
}
