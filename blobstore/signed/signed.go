// Package signed makes and checks the blobstore's signed URLs. Like an S3
// presigned URL, a signed URL lets whoever holds it do one method on one
// blob path until it expires, without the key it was signed with: build
// jobs upload their slug and cache with one, app jobs fetch their slug
// with one, and none of them ever sees the cluster key.
//
// The signature travels in the query:
//
//	/apps/<id>/slug-<uuid>.tgz?expires=1767225600&nonce=<26 chars>&sig=<43 chars>
//
//	sig = base64url(HMAC-SHA256(key, "flynn-blobstore-signed-v1\n" +
//	          METHOD + "\n" + "/" + path + "\n" + expires + "\n" + nonce))
//
// expires is a Unix time in seconds, written without leading zeros or a
// sign; nonce is random (crypto/rand), so two URLs for the same method,
// path and expiry differ, and the blobstore can refuse a second use of a
// single-use URL by its nonce. Method and path cannot hold the separator
// (methods are tokens, blob paths printable ASCII), so the signed string
// is unambiguous. The package imports only the standard library and the
// blobstore's API types, so the server and every signer share it.
package signed

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/openflynn/flynn/blobstore"
)

// The query parameters of a signed URL.
const (
	ParamExpires = "expires"
	ParamNonce   = "nonce"
	ParamSig     = "sig"
)

// domain separates these signatures from any other HMAC made with the same
// key, and versions the scheme.
const domain = "flynn-blobstore-signed-v1"

// Errors of Verify; the server maps them to HTTP statuses.
var (
	// ErrUnsigned means the query carries none of the signature's
	// parameters: the request is not a signed one at all.
	ErrUnsigned = errors.New("not a signed URL")
	// ErrMalformed means the signature's parameters are missing,
	// repeated or badly formed.
	ErrMalformed = errors.New("malformed signed URL")
	// ErrBadSignature means the signature does not match the method,
	// path, expiry and nonce under the key.
	ErrBadSignature = errors.New("signature does not match")
	// ErrExpired means a genuine signature whose time has passed.
	ErrExpired = errors.New("signed URL expired")
)

// Grant is what a verified signed URL allows.
type Grant struct {
	// Method is the one HTTP method allowed.
	Method string
	// Path is the blob path, without its leading slash.
	Path string
	// Expires is when the URL stops working.
	Expires time.Time
	// Nonce identifies the URL, for single use.
	Nonce string
}

// Sign returns the query parameters that let their holder do method on the
// blob at path (with or without its leading slash) until expires. The key
// must not be empty: an empty HMAC key proves nothing.
func Sign(key, method, path string, expires time.Time) (url.Values, error) {
	if key == "" {
		return nil, errors.New("sign: no key")
	}
	path = strings.TrimPrefix(path, "/")
	if err := blobstore.ValidatePath(path); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	if !validMethod(method) {
		return nil, fmt.Errorf("sign: invalid method %q", method)
	}
	if expires.Unix() <= 0 {
		return nil, fmt.Errorf("sign: expiry %v is not after 1970", expires)
	}
	exp := strconv.FormatInt(expires.Unix(), 10)
	nonce := rand.Text()
	return url.Values{
		ParamExpires: {exp},
		ParamNonce:   {nonce},
		ParamSig:     {base64.RawURLEncoding.EncodeToString(mac(key, method, path, exp, nonce))},
	}, nil
}

// URL returns the signed URL of the blob at path under the blobstore's
// base URL ("http://blobstore.example"), which must carry no query and no
// credentials: the signature is the only one.
func URL(base, key, method, path string, expires time.Time) (string, error) {
	q, err := Sign(key, method, path, expires)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(strings.TrimRight(base, "/") + "/" + strings.TrimPrefix(path, "/"))
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	if u.User != nil || u.RawQuery != "" {
		return "", fmt.Errorf("sign: base URL %s must have no credentials and no query", u.Redacted())
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Verify checks the signature in a request's raw query for method and the
// blob path (without its leading slash, as blobstore.CleanPath returns it)
// at time now. Other query parameters are ignored. The comparison is in
// constant time; the expiry is checked after the signature, so ErrExpired
// is only ever said of genuine URLs.
func Verify(key, method, path, rawQuery string, now time.Time) (*Grant, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	exp, nonce, sig, err := params(q)
	if err != nil {
		return nil, err
	}
	if key == "" || !validMethod(method) || blobstore.ValidatePath(path) != nil {
		return nil, ErrBadSignature
	}
	if !hmac.Equal(sig, mac(key, method, path, exp, nonce)) {
		return nil, ErrBadSignature
	}
	secs, _ := strconv.ParseInt(exp, 10, 64) // checked by params
	g := &Grant{Method: method, Path: path, Expires: time.Unix(secs, 0), Nonce: nonce}
	if !now.Before(g.Expires) {
		return nil, fmt.Errorf("%w at %s", ErrExpired, g.Expires.UTC().Format(time.RFC3339))
	}
	return g, nil
}

// params returns the signature's parameters from q, each present exactly
// once and well formed, the signature decoded.
func params(q url.Values) (exp, nonce string, sig []byte, err error) {
	if !q.Has(ParamExpires) && !q.Has(ParamNonce) && !q.Has(ParamSig) {
		return "", "", nil, ErrUnsigned
	}
	one := func(name string) (string, error) {
		switch v := q[name]; len(v) {
		case 1:
			return v[0], nil
		case 0:
			return "", fmt.Errorf("%w: no %s", ErrMalformed, name)
		default:
			return "", fmt.Errorf("%w: %s given %d times", ErrMalformed, name, len(v))
		}
	}
	if exp, err = one(ParamExpires); err != nil {
		return "", "", nil, err
	}
	if secs, perr := strconv.ParseInt(exp, 10, 64); perr != nil || secs <= 0 || strconv.FormatInt(secs, 10) != exp {
		return "", "", nil, fmt.Errorf("%w: %s is not a Unix time in seconds", ErrMalformed, ParamExpires)
	}
	if nonce, err = one(ParamNonce); err != nil {
		return "", "", nil, err
	}
	if verr := blobstore.ValidateNonce(nonce); verr != nil {
		return "", "", nil, fmt.Errorf("%w: %v", ErrMalformed, verr)
	}
	s, err := one(ParamSig)
	if err != nil {
		return "", "", nil, err
	}
	if sig, err = base64.RawURLEncoding.Strict().DecodeString(s); err != nil || len(sig) != sha256.Size {
		return "", "", nil, fmt.Errorf("%w: %s is not a base64url HMAC-SHA256", ErrMalformed, ParamSig)
	}
	return exp, nonce, sig, nil
}

func mac(key, method, path, exp, nonce string) []byte {
	h := hmac.New(sha256.New, []byte(key))
	h.Write([]byte(domain + "\n" + method + "\n/" + path + "\n" + exp + "\n" + nonce))
	return h.Sum(nil)
}

// validMethod admits the upper-case tokens HTTP methods are.
func validMethod(m string) bool {
	if m == "" || len(m) > 16 {
		return false
	}
	for i := 0; i < len(m); i++ {
		if m[i] < 'A' || m[i] > 'Z' {
			return false
		}
	}
	return true
}

// Resign returns rawURL, a signed URL, signed again with key for method:
// the same blob and expiry, a new nonce. A restore onto a cluster with
// another key does this to the URLs its releases hold (SLUG_URL), which
// the old key's signatures no longer open. ok is false for a URL that
// carries no signature, which is left as it is; a signature that is there
// but malformed is an error.
func Resign(rawURL, key, method string) (resigned string, ok bool, err error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", false, nil
	}
	exp, _, _, err := params(u.Query())
	if errors.Is(err, ErrUnsigned) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	secs, _ := strconv.ParseInt(exp, 10, 64) // checked by params
	resigned, err = URL(u.Scheme+"://"+u.Host, key, method, u.Path, time.Unix(secs, 0))
	if err != nil {
		return "", false, err
	}
	return resigned, true, nil
}
