package provider

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzDecodeCreate feeds decodeCreate arbitrary bodies: it must never
// panic, must refuse with a client error (never a server error), and may
// accept only a request without options.
func FuzzDecodeCreate(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"config":{}}`, `{"config":null}`, `{"config":{"a":1}}`, `{"config":[]}`, `{"config":"x"}`,
		`{"apps":[]}`, `{}{}`, `{`, ``, `null`, `[]`, `"x"`, `{"config":{"":""}}`, "{\"config\":{\"\xff\":1}}",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/databases", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		req, err := decodeCreate(w, r, 1<<10)
		if err != nil {
			status := statusOf(err)
			if status < 400 || status >= 500 {
				t.Fatalf("body %q: error %v has status %d, want a client error", body, err, status)
			}
			return
		}
		if len(req.Config) != 0 {
			t.Fatalf("body %q accepted with options %v", body, req.Config)
		}
	})
}

func statusOf(err error) int {
	if s, ok := err.(interface{ Status() int }); ok {
		return s.Status()
	}
	return http.StatusInternalServerError
}
