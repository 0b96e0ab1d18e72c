package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/schema"
)

// FuzzReleaseRunsOnHost builds release bodies field by field, so that the
// fuzzer explores the values a process type holds (ports, limits, names,
// paths, env) rather than JSON syntax: every release the controller
// accepts must make jobs its hosts accept (checkRuns), or every job of it
// fails on its host, as issue 19's env names did.
func FuzzReleaseRunsOnHost(f *testing.F) {
	f.Add("web", 0, 0, "http", "/health", "", int64(0), int64(0), "PORT_X", "1", "data", "/data")
	f.Add("worker", 8080, 8081, "tcp", "", "app-worker", int64(512<<20), int64(1500), "http_proxy", "http://p", "", "")
	f.Add("db", 5432, 0, "tcp", "/", "pg", int64(6<<20), int64(1), "_", "", "pg.data", "/var/lib/postgresql")
	schemas, err := schema.Load()
	if err != nil {
		f.Fatal(err)
	}
	s := &Server{schemas: schemas, opts: Options{MaxBodyBytes: 64 << 10}}
	f.Fuzz(func(t *testing.T, typ string, port1, port2 int, proto, checkPath, service string, memory, cpu int64, envName, envValue, volume, target string) {
		pt := map[string]any{"cmd": []string{"start", typ}}
		var ports []map[string]any
		for _, p := range []int{port1, port2} {
			if p >= 0 {
				port := map[string]any{"port": p, "proto": proto}
				if checkPath != "" {
					port["check_path"] = checkPath
				}
				ports = append(ports, port)
			}
		}
		if ports != nil {
			pt["ports"] = ports
		}
		if service != "" {
			pt["service"] = service
		}
		if memory != 0 || cpu != 0 {
			pt["resources"] = map[string]any{"memory": memory, "cpu": cpu}
		}
		if volume != "" || target != "" {
			pt["volumes"] = []map[string]string{{"name": volume, "target": target}}
		}
		body, err := json.Marshal(map[string]any{
			"app":       "app",
			"artifact":  "5b0a5f4e-9f3c-4d2a-8b1e-0c6f2d3a4b5c",
			"env":       map[string]string{envName: envValue},
			"processes": map[string]any{typ: pt},
		})
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPost, "/releases", strings.NewReader(string(body)))
		r.Header.Set("Content-Type", "application/json")
		var rel controller.Release
		if err := s.decode(httptest.NewRecorder(), r, "release", &rel); err != nil {
			return
		}
		// What saveRelease checks after the schema.
		if checkReleaseEnv(rel.Env, rel.Processes) != nil || checkRunnable("app", &rel) != nil {
			return
		}
		checkRuns(t, &rel)
	})
}
