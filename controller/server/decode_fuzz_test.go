package server

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/schema"
)

// FuzzDecode feeds arbitrary bodies to request decoding for every schema:
// it must never panic, and must either decode or fail with a 4xx API error.
func FuzzDecode(f *testing.F) {
	seeds := []string{
		`{}`, `null`, `[]`, `"x"`, `{"name":"my-app","meta":{"a":"b"}}`, `{"name":"My App"}`,
		`{"artifact":"5b0a5f4e-9f3c-4d2a-8b1e-0c6f2d3a4b5c","processes":{"web":{"cmd":["x"],"ports":[{"port":80,"proto":"tcp"}]}}}`,
		`{"processes":{"web":-1}}`, `{"processes":{"web":1e400}}`, `{"type":"tcp","service":"a","port":99999}`,
		`{"type":"http","service":"a","domain":"*.a.com","certificate":{"cert":"x","key":"y"}}`,
		`{"release":"5b0a5f4e-9f3c-4d2a-8b1e-0c6f2d3a4b5c","state":"up","exit_status":null}`,
		`{"key":"ssh-ed25519 AAAA"}`, `{"status":"complete"}`, `{"config":{"a":[1,2]},"apps":["a","a"]}`,
		"{\"name\":\"\xff\"}", `{"a":1}{"b":2}`, `{"meta":{"":"x"}}`, `{"env":{"A=B":"x"}}`,
	}
	for _, s := range seeds {
		f.Add(s)
	}
	schemas, err := schema.Load()
	if err != nil {
		f.Fatal(err)
	}
	s := &Server{schemas: schemas, opts: Options{MaxBodyBytes: 64 << 10}}
	targets := map[string]func() any{
		"app":         func() any { return new(controller.App) },
		"app_update":  func() any { return new(controller.AppUpdate) },
		"app_release": func() any { return new(controller.AppReleaseRequest) },
		"artifact":    func() any { return new(controller.Artifact) },
		"release":     func() any { return new(controller.Release) },
		"formation":   func() any { return new(controller.Formation) },
		"job":         func() any { return new(controller.Job) },
		"new_job":     func() any { return new(controller.NewJob) },
		"route":       func() any { return new(controller.Route) },
		"key": func() any {
			return new(struct {
				Key string `json:"key"`
			})
		},
		"api_key": func() any {
			return new(struct {
				Name string `json:"name"`
			})
		},
		"provider":          func() any { return new(controller.Provider) },
		"resource_request":  func() any { return new(controller.ResourceRequest) },
		"deployment_update": func() any { return new(controller.DeploymentUpdate) },
	}
	f.Fuzz(func(t *testing.T, body string) {
		for name, newTarget := range targets {
			r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader([]byte(body)))
			r.Header.Set("Content-Type", "application/json")
			err := s.decode(httptest.NewRecorder(), r, name, newTarget())
			if err == nil {
				continue
			}
			var apiErr *httpjson.Error
			if !errors.As(err, &apiErr) || apiErr.Status() < 400 || apiErr.Status() > 499 {
				t.Fatalf("schema %s, body %q: err = %v, want a 4xx API error", name, body, err)
			}
		}
	})
}
