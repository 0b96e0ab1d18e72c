package gitreceive

import (
	"errors"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestParseAppJSON(t *testing.T) {
	tests := []struct {
		name       string
		doc        string
		env        map[string]appEnvVar
		postdeploy string
		ignored    []string
		summary    string
		fails      string
	}{
		{
			name: "heroku's example",
			doc: `{
  "name": "Small Sharp Tool",
  "description": "This app does one little thing, and does it well.",
  "keywords": ["productivity"],
  "env": {
    "SECRET_TOKEN": {"description": "A secret key for verifying the integrity of signed cookies.", "generator": "secret"},
    "WEB_CONCURRENCY": {"description": "The number of processes to run.", "value": "5"},
    "SENTRY_DSN": {"description": "Sentry's DSN", "required": false},
    "LANG": "en_US.UTF-8"
  },
  "scripts": {"postdeploy": " bundle exec rake bootstrap ", "pr-predestroy": "x"},
  "formation": {"web": {"quantity": 1}},
  "addons": ["heroku-postgresql"],
  "buildpacks": [{"url": "heroku/ruby"}]
}`,
			env: map[string]appEnvVar{
				"SECRET_TOKEN":    {description: "A secret key for verifying the integrity of signed cookies.", required: true, generator: "secret"},
				"WEB_CONCURRENCY": {value: "5", description: "The number of processes to run.", required: true},
				"SENTRY_DSN":      {description: "Sentry's DSN"},
				"LANG":            {value: "en_US.UTF-8"},
			},
			postdeploy: "bundle exec rake bootstrap",
			ignored:    []string{"addons", "buildpacks", "formation", "scripts.pr-predestroy"},
			summary:    "-----> app.json: using env and scripts.postdeploy; ignoring: addons, buildpacks, formation, scripts.pr-predestroy",
		},
		{
			name:       "postdeploy as an object",
			doc:        `{"scripts": {"postdeploy": {"command": "./seed", "size": "standard-1x"}}}`,
			env:        map[string]appEnvVar{},
			postdeploy: "./seed",
			summary:    "-----> app.json: using scripts.postdeploy",
		},
		{name: "description only", doc: `{"name": "x", "logo": "y"}`, env: map[string]appEnvVar{}},
		{name: "nothing used", doc: `{"addons": []}`, env: map[string]appEnvVar{}, ignored: []string{"addons"}, summary: "-----> app.json: nothing to use; ignoring: addons"},
		{name: "syntax error", doc: "{\n  \"env\": {\n    \"A\": \"1\",\n  }\n}", fails: `^app.json: line 4: invalid character '}'`},
		{name: "not an object", doc: "\n[1]", fails: `^app.json: line 2: json: cannot unmarshal array`},
		{name: "null", doc: `null`, fails: `^app.json: want an object$`},
		{name: "env not an object", doc: `{"env": ["A"]}`, fails: `^app.json: env: want an object`},
		{name: "env entry a number", doc: `{"env": {"A": 1}}`, fails: `^app.json: env.A: want a string or an object`},
		{name: "bad name", doc: `{"env": {"my-var": "x"}}`, fails: `^app.json: env: invalid variable name "my-var"`},
		{name: "unknown generator", doc: `{"env": {"A": {"generator": "uuid"}}}`, fails: `^app.json: env.A: unknown generator "uuid"`},
		{name: "postdeploy a number", doc: `{"scripts": {"postdeploy": 1}}`, fails: `^app.json: scripts.postdeploy: want a command line`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parseAppJSON([]byte(tt.doc))
			if tt.fails != "" {
				if err == nil || !regexp.MustCompile(tt.fails).MatchString(err.Error()) {
					t.Fatalf("err = %v, want one matching %q", err, tt.fails)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(m.env, tt.env) {
				t.Errorf("env = %+v\nwant %+v", m.env, tt.env)
			}
			if m.postdeploy != tt.postdeploy || !slices.Equal(m.ignored, tt.ignored) {
				t.Errorf("postdeploy %q ignored %v, want %q and %v", m.postdeploy, m.ignored, tt.postdeploy, tt.ignored)
			}
			if got := m.summary(); got != tt.summary {
				t.Errorf("summary = %q, want %q", got, tt.summary)
			}
		})
	}
}

func TestResolveAppJSONEnv(t *testing.T) {
	m, err := parseAppJSON([]byte(`{"env": {
		"GREETING": "hello",
		"KEEP": {"value": "default"},
		"SECRET_KEY": {"generator": "secret"},
		"OPTIONAL": {"required": false},
		"API_TOKEN": {"description": "the API's token"},
		"DATABASE_URL": {"required": true}
	}}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		have    map[string]string
		want    map[string]string // SECRET_KEY: any 64 hex digits
		missing []string
	}{
		{
			name: "required set in the app",
			have: map[string]string{"KEEP": "mine", "API_TOKEN": "t", "DATABASE_URL": "postgres://"},
			want: map[string]string{"GREETING": "hello", "SECRET_KEY": ""},
		},
		{
			name: "secret kept",
			have: map[string]string{"SECRET_KEY": "old", "API_TOKEN": "t", "DATABASE_URL": "postgres://"},
			want: map[string]string{"GREETING": "hello", "KEEP": "default"},
		},
		{
			name:    "required missing",
			have:    map[string]string{"DATABASE_URL": ""}, // set, if empty
			missing: []string{"app.json needs API_TOKEN (the API's token); set it with `flynn env set API_TOKEN=…`"},
		},
		{
			name: "all missing",
			missing: []string{
				"app.json needs API_TOKEN (the API's token); set it with `flynn env set API_TOKEN=…`",
				"app.json needs DATABASE_URL; set it with `flynn env set DATABASE_URL=…`",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.resolveEnv(tt.have)
			if tt.missing != nil {
				var uerr *userError
				if !errors.As(err, &uerr) || uerr.msg != strings.Join(tt.missing, "\n !     ") {
					t.Fatalf("err = %v, want %q", err, tt.missing)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, want := tt.want["SECRET_KEY"]; want {
				if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(got["SECRET_KEY"]) {
					t.Errorf("SECRET_KEY = %q, want 32 random bytes in hex", got["SECRET_KEY"])
				}
				got["SECRET_KEY"] = ""
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("env = %v, want %v", got, tt.want)
			}
		})
	}
	a, _ := m.resolveEnv(map[string]string{"API_TOKEN": "t", "DATABASE_URL": "x"})
	b, _ := m.resolveEnv(map[string]string{"API_TOKEN": "t", "DATABASE_URL": "x"})
	if a["SECRET_KEY"] == b["SECRET_KEY"] {
		t.Errorf("two apps got the same secret %q", a["SECRET_KEY"])
	}
}
