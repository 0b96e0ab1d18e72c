package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/hostjob"
	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/schema"
)

// bodyTarget is one request body type: what the handlers decode it into,
// and what a body the controller accepts must mean beyond decoding.
type bodyTarget struct {
	new   func() any
	check func(t *testing.T, v any) // nil: nothing more
	// fill sets what the handler fills in after decoding (the app from
	// the path) before the value is encoded again; nil: nothing.
	fill func(v any)
}

// bodyTargets maps every request schema (see s.decode in the handlers and
// routes.go) to its body type. TestEveryBodyIsFuzzed keeps it whole.
func bodyTargets() map[string]bodyTarget {
	return map[string]bodyTarget{
		"app":         {new: func() any { return new(controller.App) }, check: checkApp},
		"app_update":  {new: func() any { return new(controller.AppUpdate) }, check: checkAppUpdate},
		"app_release": {new: func() any { return new(controller.AppReleaseRequest) }},
		"artifact":    {new: func() any { return new(controller.Artifact) }},
		"release": {new: func() any { return new(controller.Release) }, check: checkRelease, fill: func(v any) {
			if rel := v.(*controller.Release); rel.AppID == "" {
				rel.AppID = "app" // POST /apps/:id/releases: the app in the path
			}
		}},
		"release_patch": {new: func() any { return new(controller.ReleasePatch) }, check: checkReleasePatch},
		"formation":     {new: func() any { return new(controller.Formation) }, check: checkFormation},
		"job":           {new: func() any { return new(controller.Job) }, check: checkJob},
		"new_job":       {new: func() any { return new(controller.NewJob) }, check: checkNewJob},
		"route":         {new: func() any { return new(controller.Route) }, check: checkRoute},
		"route_update":  {new: func() any { return new(controller.RouteUpdate) }},
		"key": {new: func() any {
			return new(struct {
				Key string `json:"key"`
			})
		}},
		"api_key": {new: func() any {
			return new(struct {
				Name string `json:"name"`
			})
		}, check: checkAPIKey},
		"provider":          {new: func() any { return new(controller.Provider) }},
		"resource_request":  {new: func() any { return new(controller.ResourceRequest) }},
		"deployment_update": {new: func() any { return new(controller.DeploymentUpdate) }},
		"log_drain":         {new: func() any { return new(controller.NewLogDrain) }},
		"build_env_patch":   {new: func() any { return new(controller.BuildEnvPatch) }},
	}
}

// FuzzDecode feeds arbitrary bodies to request decoding for every schema.
// It must never panic and must either decode or fail with a 4xx API
// error. A body it accepts must mean what the handlers take it to (see
// the targets' checks), and must be a fixed point of the encoding: the
// value encoded (as the Go client sends it) is accepted again and decodes
// to a value that encodes the same.
func FuzzDecode(f *testing.F) {
	seeds := []string{
		`{}`, `null`, `[]`, `"x"`, `{"name":"my-app","meta":{"a":"b"}}`, `{"name":"My App"}`,
		`{"artifact":"5b0a5f4e-9f3c-4d2a-8b1e-0c6f2d3a4b5c","processes":{"web":{"cmd":["x"],"ports":[{"port":80,"proto":"tcp"}]}}}`,
		`{"processes":{"web":-1}}`, `{"processes":{"web":1e400}}`, `{"type":"tcp","service":"a","port":99999}`,
		`{"type":"http","service":"a","domain":"*.a.com","certificate":{"cert":"x","key":"y"}}`,
		`{"release":"5b0a5f4e-9f3c-4d2a-8b1e-0c6f2d3a4b5c","state":"up","exit_status":null}`,
		`{"key":"ssh-ed25519 AAAA"}`, `{"status":"complete"}`, `{"config":{"a":[1,2]},"apps":["a","a"]}`,
		"{\"name\":\"\xff\"}", `{"a":1}{"b":2}`, `{"meta":{"":"x"}}`, `{"env":{"A=B":"x"}}`,
		`{"env":{"set":{"A":"1","my-var":"x"},"unset":["B"]}}`, `{"env":{"unset":[null]}}`,
		`{"env":{"set":{"A":"1"},"unset":["B"]},"processes":{},"meta":{}}`,
		`{"app":"a","artifact":"5b0a5f4e-9f3c-4d2a-8b1e-0c6f2d3a4b5c","env":{"PORT_X":"1"},"meta":{"git":"true"},"processes":{"web":{"cmd":["start","web"],"env":{"B":"2"},"ports":[{"port":8080,"proto":"http","check_path":"/health"},{"proto":"tcp"}],"service":"a-web","resources":{"memory":268435456,"cpu":500,"max_fd":1024,"max_procs":64,"disk":1073741824},"volumes":[{"name":"data","target":"/data"}],"persistent":true,"omni":true}},"created_at":"2024-01-02T03:04:05+01:00"}`,
		`{"release":"5b0a5f4e-9f3c-4d2a-8b1e-0c6f2d3a4b5c","args":["sh"],"env":{"A":"1"},"tty":true,"type":"web","meta":{"x":"y"}}`,
		`{"artifact":"5b0a5f4e-9f3c-4d2a-8b1e-0c6f2d3a4b5c","entrypoint":["pg_dump"],"args":["--format=custom"]}`, `{"entrypoint":[""]}`,
		`{"release":"5b0a5f4e-9f3c-4d2a-8b1e-0c6f2d3a4b5c","state":"up","started_at":"2024-01-02T03:04:05.5Z","exit_status":0}`,
		`{"type":"http","service":"a-web","domain":"Example.COM","path":"/api","sticky":true,"drain_backends":true}`,
		`{"type":"tcp","service":"db"}`, `{"name":"alice@example.com"}`, `{"strategy":"one-by-one","meta":{}}`,
		`{"status":"failed","error":"boom"}`, `{"name":"pg","url":"http://pg.discoverd"}`, `{"id":""}`,
		`{"url":"syslog+tls://logs.example.com:6514"}`,
	}
	for _, s := range seeds {
		f.Add(s)
	}
	schemas, err := schema.Load()
	if err != nil {
		f.Fatal(err)
	}
	s := &Server{schemas: schemas, opts: Options{MaxBodyBytes: 64 << 10}}
	targets := bodyTargets()
	decode := func(name string, body []byte) (any, error) {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		v := targets[name].new()
		return v, s.decode(httptest.NewRecorder(), r, name, v)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, name := range slices.Sorted(maps.Keys(targets)) {
			v, err := decode(name, []byte(body))
			if err != nil {
				var apiErr *httpjson.Error
				if !errors.As(err, &apiErr) || apiErr.Status() < 400 || apiErr.Status() > 499 {
					t.Fatalf("schema %s, body %q: err = %v, want a 4xx API error", name, body, err)
				}
				continue
			}
			if fill := targets[name].fill; fill != nil {
				fill(v)
			}
			enc, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("schema %s, body %q: decoded %+v does not encode: %v", name, body, v, err)
			}
			again, err := decode(name, enc)
			if err != nil {
				t.Fatalf("schema %s, body %q: accepted, but its encoding %s is refused: %v", name, body, enc, err)
			}
			if enc2, _ := json.Marshal(again); !bytes.Equal(enc, enc2) {
				t.Fatalf("schema %s, body %q: encodes as %s, which decodes to a value encoding as %s", name, body, enc, enc2)
			}
			if check := targets[name].check; check != nil {
				t.Run(name, func(t *testing.T) { check(t, v) })
			}
		}
	})
}

// TestEveryBodyIsFuzzed: each request schema has a target in FuzzDecode,
// so that a new request body is fuzzed from the day it is added.
func TestEveryBodyIsFuzzed(t *testing.T) {
	schemas, err := schema.Load()
	if err != nil {
		t.Fatal(err)
	}
	targets := bodyTargets()
	for _, name := range schemas.Names() {
		if _, ok := targets[name]; !ok && name != "common" {
			t.Errorf("schema %s has no target in bodyTargets", name)
		}
	}
	for name := range targets {
		if !slices.Contains(schemas.Names(), name) {
			t.Errorf("bodyTargets has %s, which is no schema", name)
		}
	}
}

func checkApp(t *testing.T, v any) {
	app := v.(*controller.App)
	if app.Name != "" && !controller.ValidAppName(app.Name) {
		t.Fatalf("app name %q accepted, but ValidAppName refuses it", app.Name)
	}
	if app.Strategy != "" && !controller.ValidStrategy(app.Strategy) {
		t.Fatalf("strategy %q accepted", app.Strategy)
	}
}

func checkAppUpdate(t *testing.T, v any) {
	u := v.(*controller.AppUpdate)
	if u.Strategy != nil && !controller.ValidStrategy(*u.Strategy) {
		t.Fatalf("strategy %q accepted", *u.Strategy)
	}
}

func checkAPIKey(t *testing.T, v any) {
	name := v.(*struct {
		Name string `json:"name"`
	}).Name
	if !controller.ValidAPIKeyName(name) {
		t.Fatalf("API key name %q passes the schema, but ValidAPIKeyName refuses it", name)
	}
}

func checkFormation(t *testing.T, v any) {
	for typ, n := range v.(*controller.Formation).Processes {
		if n < 0 {
			t.Fatalf("formation: %s has %d processes", typ, n)
		}
	}
}

func checkJob(t *testing.T, v any) {
	j := v.(*controller.Job)
	if !controller.ValidJobState(j.State) {
		t.Fatalf("job state %q accepted", j.State)
	}
}

// checkRelease: every process of an accepted release makes a job its
// hosts accept, since otherwise every job of the release fails on its
// host (issue 19's env names were one such case).
func checkRelease(t *testing.T, v any) {
	checkRuns(t, v.(*controller.Release))
}

func checkReleasePatch(t *testing.T, v any) {
	p := v.(*controller.ReleasePatch)
	rel := &controller.Release{AppID: "app-id", Processes: p.Processes}
	if p.Env != nil {
		rel.Env = p.Env.Set
	}
	checkRuns(t, rel)
}

func checkRuns(t *testing.T, rel *controller.Release) {
	rel.ID = "release-id"
	art := &controller.Artifact{Type: controller.ArtifactTypeDocker, URI: "flynn/slugrunner:test"}
	for _, typ := range slices.Sorted(maps.Keys(rel.Processes)) {
		job := hostjob.ForProcess("host1", "app", rel, art, typ)
		if err := job.Validate(); err != nil {
			t.Fatalf("release accepted, but the host refuses the job of its %s process: %v", typ, err)
		}
	}
	// Checked apart from the jobs too: a release without processes yet
	// (config only) passes its env to the next one.
	for name, value := range rel.Env {
		if !host.ValidEnvName(name) {
			t.Fatalf("env name %q accepted, but breaks the one rule %s", name, host.EnvNamePattern)
		}
		if strings.IndexByte(value, 0) >= 0 {
			t.Fatalf("env %s accepted with a NUL in its value, which no host can pass to a process", name)
		}
	}
}

func checkNewJob(t *testing.T, v any) {
	req := v.(*controller.NewJob)
	job := hostjob.ForOneOff("host1", hostjob.OneOff{
		App:        hostjob.App{ID: "app-id", Name: "app", ReleaseID: "release-id"},
		Type:       req.Type,
		Artifact:   &controller.Artifact{Type: controller.ArtifactTypeDocker, URI: "flynn/slugrunner:test"},
		Entrypoint: req.Entrypoint,
		Args:       req.Args,
		Env:        req.Env,
		Meta:       req.Meta,
		TTY:        req.TTY,
	})
	if err := job.Validate(); err != nil {
		t.Fatalf("one-off job accepted, but the host refuses it: %v", err)
	}
	// An entrypoint of no program would leave the image's in place (Docker
	// takes an empty one as unset) or run nothing.
	if req.Entrypoint != nil && (len(req.Entrypoint) == 0 || req.Entrypoint[0] == "") {
		t.Fatalf("one-off job accepted with entrypoint %q, which names no program", req.Entrypoint)
	}
}

// checkRoute: the router can serve what is accepted; it watches the
// route's service in discoverd.
func checkRoute(t *testing.T, v any) {
	r := v.(*controller.Route)
	if err := discoverd.ValidateServiceName(r.Service); err != nil {
		t.Fatalf("route accepted, but discoverd refuses its service: %v", err)
	}
	switch r.Type {
	case controller.RouteTypeHTTP:
		if r.Domain == "" || r.Port != 0 {
			t.Fatalf("HTTP route with domain %q and port %d accepted", r.Domain, r.Port)
		}
	case controller.RouteTypeTCP:
		if r.Domain != "" || r.Port < 0 || r.Port > 65535 {
			t.Fatalf("TCP route with domain %q and port %d accepted", r.Domain, r.Port)
		}
	default:
		t.Fatalf("route type %q accepted", r.Type)
	}
}
