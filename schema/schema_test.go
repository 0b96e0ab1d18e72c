package schema

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
)

func TestSchemas(t *testing.T) {
	set, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	const id = "5b0a5f4e-9f3c-4d2a-8b1e-0c6f2d3a4b5c"
	tests := []struct {
		name, schema, doc string
		wantField         string // "" with wantOK
		wantOK            bool
	}{
		{"app empty", "app", `{}`, "", true},
		{"app name", "app", `{"name":"my-app","meta":{"a":"b"},"strategy":"all-at-once"}`, "", true},
		{"app bad name", "app", `{"name":"My_App"}`, "name", false},
		{"app name too long", "app", `{"name":"a234567890123456789012345678901"}`, "name", false},
		{"app bad strategy", "app", `{"strategy":"yolo"}`, "strategy", false},
		{"app unknown field", "app", `{"nam":"x"}`, "", false},
		{"app meta not string", "app", `{"meta":{"a":1}}`, "meta.a", false},
		{"artifact", "artifact", `{"type":"docker","uri":"flynn/slugrunner:abc"}`, "", true},
		{"artifact bad type", "artifact", `{"type":"tarball","uri":"x"}`, "type", false},
		{"release", "release", `{"artifact":"` + id + `","processes":{"web":{"cmd":["start"],"ports":[{"proto":"tcp"}],"service":"app-web","resources":{"memory":1024},"omni":false}}}`, "", true},
		{"release check path", "release", `{"artifact":"` + id + `","processes":{"web":{"ports":[{"proto":"http","check_path":"/health"}]}}}`, "", true},
		{"release bad check path", "release", `{"artifact":"` + id + `","processes":{"web":{"ports":[{"proto":"http","check_path":"health"}]}}}`, "processes.web.ports.0.check_path", false},
		{"release bad port", "release", `{"artifact":"` + id + `","processes":{"web":{"ports":[{"port":70000,"proto":"tcp"}]}}}`, "processes.web.ports.0.port", false},
		{"release with config only", "release", `{"env":{"BUILDPACK_URL":"https://example.com/bp.tgz"}}`, "", true},
		{"formation", "formation", `{"processes":{"web":3}}`, "", true},
		{"formation negative", "formation", `{"processes":{"web":-1}}`, "processes.web", false},
		{"formation fraction", "formation", `{"processes":{"web":1.5}}`, "processes.web", false},
		{"route http", "route", `{"type":"http","service":"web","domain":"*.example.com","path":"/api"}`, "", true},
		{"route http port", "route", `{"type":"http","service":"web","domain":"a.com","port":80}`, "", false},
		{"route tcp", "route", `{"type":"tcp","service":"db","port":5432}`, "", true},
		{"route tcp domain", "route", `{"type":"tcp","service":"db","port":5432,"domain":"a.com"}`, "", false},
		{"route tcp no port (the controller picks one)", "route", `{"type":"tcp","service":"db"}`, "", true},
		{"route bad domain", "route", `{"type":"http","service":"web","domain":"a b"}`, "domain", false},
		{"route no request log", "route", `{"type":"http","service":"web","domain":"a.com","no_request_log":true}`, "", true},
		{"route update", "route_update", `{"no_request_log":false}`, "", true},
		{"route update empty", "route_update", `{}`, "", true},
		{"route update bad value", "route_update", `{"no_request_log":"off"}`, "no_request_log", false},
		{"route update of what it matches", "route_update", `{"domain":"b.com"}`, "", false},
		{"job", "job", `{"release":"` + id + `","state":"up","host_id":"h1","started_at":"2024-01-02T03:04:05Z"}`, "", true},
		{"job bad state", "job", `{"release":"` + id + `","state":"zombie"}`, "state", false},
		{"job bad time", "job", `{"release":"` + id + `","state":"up","started_at":"yesterday"}`, "started_at", false},
		{"not json", "app", `{"name":`, "", false},
		{"api key", "api_key", `{"name":"alice@example.com"}`, "", true},
		{"api key without name", "api_key", `{}`, "", false},
		{"api key bad name", "api_key", `{"name":"a b"}`, "name", false},
		{"api key with a secret", "api_key", `{"name":"a","secret":"chosen"}`, "", false},
		{"log drain", "log_drain", `{"url":"syslog+tls://logs.example.com:6514"}`, "", true},
		{"log drain without url", "log_drain", `{}`, "", false},
		{"log drain empty url", "log_drain", `{"url":""}`, "url", false},
		{"log drain with an id", "log_drain", `{"url":"https://logs.example.com","id":"x"}`, "", false},
		{"app system", "app", `{"name":"router","system":true}`, "", true},
		{"release host network", "release", `{"artifact":"` + id + `","processes":{"app":{"host_network":true}}}`, "", true},
		{"release env name", "release", `{"env":{"my-var":"x"}}`, "env", false},
		{"release env name beside an artifact", "release", `{"artifact":"","env":{"my-var":"x"},"version":0}`, "env", false},
		{"release process env name", "release", `{"artifact":"` + id + `","processes":{"web":{"env":{"1A":"x"}}}}`, "processes.web.env", false},
		{"new job env name", "new_job", `{"env":{"A.B":"x"}}`, "env", false},
		{"new job with a tool's artifact", "new_job", `{"artifact":"` + id + `","entrypoint":["pg_dump"],"args":["--format=custom"]}`, "", true},
		{"new job entrypoint with arguments", "new_job", `{"entrypoint":["/bin/sh","-c","exec x","x"]}`, "", true},
		{"new job artifact not an id", "new_job", `{"artifact":"flynn/postgres-api"}`, "artifact", false},
		{"new job empty entrypoint", "new_job", `{"entrypoint":[]}`, "entrypoint", false},
		{"new job entrypoint without a program", "new_job", `{"entrypoint":["","x"]}`, "entrypoint.0", false},
		{"new job entrypoint not strings", "new_job", `{"entrypoint":["psql",1]}`, "entrypoint.1", false},
		{"release patch", "release_patch", `{"env":{"set":{"A":"1"},"unset":["B","my-old-var"]}}`, "", true},
		{"release patch of a push", "release_patch", `{"artifact":"` + id + `","processes":{"web":{"cmd":["start","web"]}},"meta":{"git":"true"},"env":{"set":{"SLUG_URL":"u"}}}`, "", true},
		{"release patch empty", "release_patch", `{}`, "", true},
		{"release patch not deployed", "release_patch", `{"no_deploy":true,"env":{"set":{"A":"1"}}}`, "", true},
		{"release patch no_deploy not a boolean", "release_patch", `{"no_deploy":"yes"}`, "no_deploy", false},
		{"release patch bad name", "release_patch", `{"env":{"set":{"my-var":"x"}}}`, "env.set", false},
		{"release patch unset nothing", "release_patch", `{"env":{"unset":[""]}}`, "env.unset.0", false},
		{"release patch env unknown field", "release_patch", `{"env":{"add":{"A":"1"}}}`, "", false},
		{"build env patch", "build_env_patch", `{"env":{"set":{"GOPROXY":"https://proxy.test"},"unset":["PIP_INDEX_URL"]},"ca_certs":""}`, "", true},
		{"build env patch unknown field", "build_env_patch", `{"certs":"x"}`, "", false},
		{"build env patch certs not a string", "build_env_patch", `{"ca_certs":1}`, "ca_certs", false},
		{"release patch version", "release_patch", `{"version":3}`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := set.Validate(tt.schema, []byte(tt.doc))
			if tt.wantOK {
				if err != nil {
					t.Fatalf("Validate: %v, want ok", err)
				}
				return
			}
			if !httpjson.IsCode(err, httpjson.CodeValidation) {
				t.Fatalf("Validate = %v, want a validation_error", err)
			}
			if tt.wantField != "" {
				if got := err.(*httpjson.Error).Field; got != tt.wantField {
					t.Errorf("field = %q, want %q (%v)", got, tt.wantField, err)
				}
			}
		})
	}
}

func TestEverySchemaCompiles(t *testing.T) {
	set, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"api_key", "app", "app_release", "app_update", "artifact", "build_env_patch", "common", "deployment_update", "formation", "job", "key", "log_drain", "new_job", "provider", "release", "release_patch", "resource_request", "route", "route_update"}
	got := set.Names()
	if len(got) != len(want) {
		t.Fatalf("names = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("names = %v, want %v", got, want)
		}
	}
	if err := set.Validate("nope", []byte(`{}`)); err == nil || httpjson.IsCode(err, httpjson.CodeValidation) {
		t.Errorf("unknown schema: err = %v, want a plain error", err)
	}
}

// TestEnvNameRuleAgrees: the schemas take exactly the variable names
// flynn-host does (host.EnvNamePattern, the one rule), wherever an env
// reaches a job: a name the controller accepts never makes every job of a
// release fail on its host.
func TestEnvNameRuleAgrees(t *testing.T) {
	set, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	common, err := files.ReadFile("common.json")
	if err != nil {
		t.Fatal(err)
	}
	var defs struct {
		Defs struct {
			EnvName struct {
				Pattern string `json:"pattern"`
			} `json:"env_name"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(common, &defs); err != nil {
		t.Fatal(err)
	}
	if got := defs.Defs.EnvName.Pattern; got != host.EnvNamePattern {
		t.Errorf("common.json env_name pattern = %q, host.EnvNamePattern = %q", got, host.EnvNamePattern)
	}
	names := []struct {
		name  string
		valid bool
	}{
		{"PORT", true}, {"PORT_1", true}, {"DATABASE_URL", true}, {"BUILDPACK_URL", true}, {"SLUG_URL", true},
		{"FLYNN_CONTROLLER_KEY", true}, {"FLYNN_APP_GATEWAY", true}, {"http_proxy", true}, {"npm_config_registry", true},
		{"_", true}, {"_1", true}, {"a", true}, {strings.Repeat("A", 255), true},
		{"my-var", false}, {"1A", false}, {"9", false}, {"", false}, {"A=B", false}, {"A B", false}, {"A.B", false},
		{"Ä", false}, {"A\x00", false}, {"A\n", false}, {"\nA", false}, {strings.Repeat("A", 256), false},
	}
	bodies := []struct{ schema, format string }{
		{"release", `{"env":{%s:"x"}}`},
		{"release", `{"artifact":"5b0a5f4e-9f3c-4d2a-8b1e-0c6f2d3a4b5c","processes":{"web":{"env":{%s:"x"}}}}`},
		{"new_job", `{"env":{%s:"x"}}`},
		{"release_patch", `{"env":{"set":{%s:"x"}}}`},
		{"build_env_patch", `{"env":{"set":{%s:"x"}}}`},
	}
	for _, n := range names {
		if got := host.ValidEnvName(n.name); got != n.valid {
			t.Errorf("host.ValidEnvName(%q) = %v, want %v", n.name, got, n.valid)
		}
		quoted, _ := json.Marshal(n.name)
		for _, b := range bodies {
			err := set.Validate(b.schema, []byte(fmt.Sprintf(b.format, quoted)))
			if got := err == nil; got != n.valid {
				t.Errorf("schema %s with the name %q: err = %v, want valid %v", b.schema, n.name, err, n.valid)
			}
		}
	}
}
