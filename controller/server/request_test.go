package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/openflynn/flynn/pkg/httpjson"
)

// postJSON posts v to path and decodes a 2xx reply into out.
func postJSON(t *testing.T, h *harness, path string, v, out any) error {
	t.Helper()
	body, _ := json.Marshal(v)
	return rawRequest(t, h, http.MethodPost, path, "application/json", body, out)
}

func rawRequest(t *testing.T, h *harness, method, path, contentType string, body []byte, out any) error {
	t.Helper()
	return rawRequestAs(t, h, testKey, method, path, contentType, body, out)
}

// rawRequestAs is rawRequest with key as the basic-auth password.
func rawRequestAs(t *testing.T, h *harness, key, method, path, contentType string, body []byte, out any) error {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, h.url+path, bytes.NewReader(body))
	req.SetBasicAuth("", key)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: error reply has content type %q, want application/json", method, path, ct)
		}
		err := httpjson.ReadError(resp)
		if e, ok := err.(*httpjson.Error); ok && e.Status() != resp.StatusCode {
			t.Errorf("%s %s: status %d but code %s", method, path, resp.StatusCode, e.Code)
		}
		return err
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// TestBadInput sends malformed requests to every endpoint that takes a
// body: each must get a 4xx JSON error, never a 500.
func TestBadInput(t *testing.T) {
	h := newHarness(t)
	app := h.app(t, "bad-input")
	rel := h.release(t, app, nil)
	paths := []struct{ method, path string }{
		{"POST", "/apps"},
		{"POST", "/apps/bad-input"},
		{"PUT", "/apps/bad-input/release"},
		{"PATCH", "/apps/bad-input/release"},
		{"POST", "/apps/bad-input/deploy"},
		{"POST", "/apps/bad-input/releases"},
		{"POST", "/releases"},
		{"POST", "/artifacts"},
		{"PUT", "/apps/bad-input/formations/" + rel.ID},
		{"PUT", "/apps/bad-input/jobs/host-1"},
		{"POST", "/apps/bad-input/jobs"},
		{"POST", "/apps/bad-input/routes"},
		{"POST", "/keys"},
		{"POST", "/api-keys"},
		{"POST", "/providers"},
		{"PUT", "/apps/bad-input/deployments/5b0a5f4e-9f3c-4d2a-8b1e-0c6f2d3a4b5c"},
	}
	bodies := []struct {
		name, contentType string
		body              []byte
		code              httpjson.Code
	}{
		{"not json", "application/json", []byte("hello"), httpjson.CodeValidation},
		{"truncated", "application/json", []byte(`{"name":`), httpjson.CodeValidation},
		{"empty", "application/json", nil, httpjson.CodeValidation},
		{"array", "application/json", []byte(`[1,2]`), httpjson.CodeValidation},
		{"null", "application/json", []byte(`null`), httpjson.CodeValidation},
		{"unknown field", "application/json", []byte(`{"bogus":1}`), httpjson.CodeValidation},
		{"two values", "application/json", []byte(`{} {}`), httpjson.CodeValidation},
		{"wrong type", "text/plain", []byte(`{}`), httpjson.CodeUnsupportedMedia},
		{"oversized", "application/json", []byte(`{"name":"` + strings.Repeat("a", 2<<20) + `"}`), httpjson.CodeRequestTooLarge},
	}
	for _, p := range paths {
		for _, b := range bodies {
			t.Run(p.method+" "+p.path+" "+b.name, func(t *testing.T) {
				err := rawRequest(t, h, p.method, p.path, b.contentType, b.body, nil)
				wantCode(t, err, b.code, "")
			})
		}
	}
}
