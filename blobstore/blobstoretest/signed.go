package blobstoretest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/blobstore"
	"github.com/openflynn/flynn/blobstore/signed"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// signedTarget returns the path and query of a URL signed with key for
// method on path, valid for ttl by the env's clock.
func (e *env) signedTarget(t *testing.T, key, method, path string, ttl time.Duration) string {
	t.Helper()
	q, err := signed.Sign(key, method, path, e.clock.Now().Add(ttl))
	if err != nil {
		t.Fatal(err)
	}
	return "/" + path + "?" + q.Encode()
}

// tamper changes the first character of a target's signature.
func tamper(target string) string {
	i := strings.Index(target, signed.ParamSig+"=") + len(signed.ParamSig) + 1
	c := byte('A')
	if target[i] == 'A' {
		c = 'B'
	}
	return target[:i] + string(c) + target[i+1:]
}

// wantAPIError fails t unless body is a JSON API error with code whose
// message contains msg.
func wantAPIError(t *testing.T, body []byte, code httpjson.Code, msg string) {
	t.Helper()
	var apiErr httpjson.Error
	if err := json.Unmarshal(body, &apiErr); err != nil || apiErr.Code != code || !strings.Contains(apiErr.Message, msg) {
		t.Fatalf("reply %s: want a JSON %s error saying %q", body, code, msg)
	}
}

// testSignedURLs checks that a signed URL allows exactly its method on
// exactly its path until it expires, and reads may repeat.
func testSignedURLs(t *testing.T, factory Factory) {
	e := newEnv(t, factory, 0)
	const path, other = "apps/a/slug.tgz", "apps/b/slug.tgz"
	data, otherData := Bytes(20, 70<<10), Bytes(21, 100)
	e.put(t, path, data)
	e.put(t, other, otherData)

	get := e.signedTarget(t, Key, http.MethodGet, path, time.Hour)
	for i := range 3 { // slugrunner fetches the slug at every job start
		resp, body := e.doSigned(t, http.MethodGet, get, nil, nil)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
			t.Fatalf("signed GET #%d: status %d, %d bytes; want 200 and the blob", i+1, resp.StatusCode, len(body))
		}
	}
	resp, body := e.doSigned(t, http.MethodGet, get, http.Header{"Range": {"bytes=0-9"}}, nil)
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[:10]) {
		t.Fatalf("signed ranged GET: status %d, want 206 with the range", resp.StatusCode)
	}
	head := e.signedTarget(t, Key, http.MethodHead, path, time.Hour)
	if resp, _ := e.doSigned(t, http.MethodHead, head, nil, nil); resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(data)) {
		t.Fatalf("signed HEAD: status %d, length %d", resp.StatusCode, resp.ContentLength)
	}

	expiring := e.signedTarget(t, Key, http.MethodGet, path, time.Minute)
	put := e.signedTarget(t, Key, http.MethodPut, path, time.Hour)
	refused := []struct {
		name, method, target, msg string
	}{
		{"no credentials", http.MethodGet, "/" + path, "no signed URL"},
		{"another path", http.MethodGet, strings.Replace(get, path, other, 1), "does not allow"},
		{"HEAD with a GET URL", http.MethodHead, get, ""},
		{"GET with a HEAD URL", http.MethodGet, head, "does not allow"},
		{"GET with a PUT URL", http.MethodGet, put, "does not allow"},
		{"PUT with a GET URL", http.MethodPut, get, "does not allow"},
		{"DELETE with a GET URL", http.MethodDelete, get, "does not allow"},
		{"signed with another key", http.MethodGet, e.signedTarget(t, "another-key", http.MethodGet, path, time.Hour), "does not allow"},
		{"signature tampered", http.MethodGet, tamper(get), "does not allow"},
		{"signature cut", http.MethodGet, get[:len(get)-5], "malformed"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.doSigned(t, tt.method, tt.target, nil, strings.NewReader("evil"))
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
			if tt.method != http.MethodHead {
				wantAPIError(t, body, httpjson.CodeUnauthorized, tt.msg)
			}
		})
	}

	e.clock.advance(2 * time.Minute)
	resp, body = e.doSigned(t, http.MethodGet, expiring, nil, nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("expired signed GET: status %d, want 401", resp.StatusCode)
	}
	wantAPIError(t, body, httpjson.CodeUnauthorized, "expired")

	del := e.signedTarget(t, Key, http.MethodDelete, other, time.Hour)
	if resp, _ := e.doSigned(t, http.MethodDelete, del, nil, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("signed DELETE: status %d, want 204", resp.StatusCode)
	}
	e.mustBeMissing(t, other)
	e.mustHold(t, path, data)
	e.mustBeClean(t)
}

// testSignedPutSingleUse checks that a signed upload URL works once.
func testSignedPutSingleUse(t *testing.T, factory Factory) {
	e := newEnv(t, factory, 0)
	const path = "apps/c/slug-1.tgz"
	first, second := Bytes(30, 10<<10), Bytes(31, 10<<10)
	put := e.signedTarget(t, Key, http.MethodPut, path, time.Hour)
	if resp, body := e.doSigned(t, http.MethodPut, put, nil, bytes.NewReader(first)); resp.StatusCode != http.StatusOK {
		t.Fatalf("signed PUT: status %d: %s", resp.StatusCode, body)
	}
	resp, body := e.doSigned(t, http.MethodPut, put, nil, bytes.NewReader(second))
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("second PUT with the URL: status %d, want 409", resp.StatusCode)
	}
	wantAPIError(t, body, httpjson.CodeConflict, "already used")
	e.mustHold(t, path, first)

	// A fresh URL, or the key, may still write the path.
	if resp, body := e.doSigned(t, http.MethodPut, e.signedTarget(t, Key, http.MethodPut, path, time.Hour), nil, bytes.NewReader(second)); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT with a fresh URL: status %d: %s", resp.StatusCode, body)
	}
	e.mustHold(t, path, second)
	e.mustBeClean(t)
}

// testSignedPutRace sends several uploads with one signed URL at once:
// exactly one is stored.
func testSignedPutRace(t *testing.T, factory Factory) {
	e := newEnv(t, factory, 0)
	const (
		path    = "apps/d/slug.tgz"
		writers = 8
	)
	put := e.signedTarget(t, Key, http.MethodPut, path, time.Hour)
	bodies := make([][]byte, writers)
	for i := range bodies {
		bodies[i] = Bytes(uint64(40+i), 64<<10)
	}
	start := make(chan struct{})
	statuses := make([]int, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			<-start
			req, err := http.NewRequest(http.MethodPut, e.srv.URL+put, bytes.NewReader(bodies[i]))
			if err != nil {
				t.Error(err)
				return
			}
			resp, err := e.http.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, s := range statuses {
		switch {
		case s == http.StatusOK && winner < 0:
			winner = i
		case s == http.StatusOK:
			t.Fatalf("uploads %d and %d both stored with one signed URL", winner, i)
		case s != http.StatusConflict:
			t.Fatalf("upload %d: status %d, want 200 or 409", i, s)
		}
	}
	if winner < 0 {
		t.Fatalf("no upload stored: statuses %v", statuses)
	}
	e.mustHold(t, path, bodies[winner])
	e.mustBeClean(t)
}

// testClaimNonce checks the backend's nonce record directly: atomic under
// concurrency, validated, and forgetting what expired long ago.
func testClaimNonce(t *testing.T, factory Factory) {
	e := newEnv(t, factory, 0)
	b := e.backend
	ctx := context.Background()
	now := time.Now()

	const claimers = 16
	nonce := "RACE" + strings.Repeat("a", 22)
	errs := make(chan error, claimers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range claimers {
		wg.Go(func() {
			<-start
			errs <- b.ClaimNonce(ctx, nonce, now.Add(time.Hour))
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	won := 0
	for err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, blobstore.ErrNonceUsed):
			t.Fatalf("claim: %v, want nil or ErrNonceUsed", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d concurrent claims of one nonce succeeded, want 1", won, claimers)
	}

	for _, bad := range []string{"", "short", "../../../etc/passwd/xx", strings.Repeat("a", blobstore.MaxNonceLen+1), "nonce with spaces in it!"} {
		if err := b.ClaimNonce(ctx, bad, now.Add(time.Hour)); err == nil || errors.Is(err, blobstore.ErrNonceUsed) {
			t.Errorf("claim of invalid nonce %q: %v, want a validation error", bad, err)
		}
	}

	claim := func(n string, expires time.Time) error { return b.ClaimNonce(ctx, n, expires) }
	old, live := "OLD"+strings.Repeat("b", 20), "LIVE"+strings.Repeat("c", 20)
	for i, n := range []string{old, live} {
		exp := now.Add(-2 * time.Hour)
		if n == live {
			exp = now.Add(time.Hour)
		}
		if err := claim(n, exp); err != nil {
			t.Fatalf("claim %d: %v", i, err)
		}
	}
	if err := claim("NEXT"+strings.Repeat("d", 20), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := claim(old, now.Add(-2*time.Hour)); err != nil {
		t.Errorf("nonce expired two hours ago is still remembered: %v", err)
	}
	if err := claim(live, now.Add(time.Hour)); !errors.Is(err, blobstore.ErrNonceUsed) {
		t.Errorf("second claim of an unexpired nonce: %v, want ErrNonceUsed", err)
	}
}
