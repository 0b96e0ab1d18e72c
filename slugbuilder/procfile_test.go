package slugbuilder

import (
	"maps"
	"strings"
	"testing"
)

func TestParseProcfile(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr string
	}{
		{"types", "web: node server.js --port $PORT\nworker:bundle exec sidekiq\n", map[string]string{"web": "node server.js --port $PORT", "worker": "bundle exec sidekiq"}, ""},
		{"comments, blanks and CRLF", "# the app\r\n\r\nweb: ./run\r\n  \n", map[string]string{"web": "./run"}, ""},
		{"colon in command", "web: bash -c 'echo a:b'\n", map[string]string{"web": "bash -c 'echo a:b'"}, ""},
		{"dashes and underscores", "release-phase_1: ./migrate\n", map[string]string{"release-phase_1": "./migrate"}, ""},
		{"empty", "", map[string]string{}, ""},
		{"no colon", "web ./run\n", nil, "line 1"},
		{"bad type", "web.1: ./run\n", nil, `process type "web.1"`},
		{"space in type", "my web: ./run\n", nil, `process type "my web"`},
		{"no command", "web:\n", nil, "has no command"},
		{"duplicate", "web: a\nweb: b\n", nil, "line 2: process type \"web\" appears twice"},
		{"type starting with a dash (the controller refuses it)", "-web: x\n", nil, `process type "-web"`},
		{"type longer than 63 (the controller refuses it)", strings.Repeat("w", 64) + ": x\n", nil, "must match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseProcfile(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !maps.Equal(got, tt.want) {
				t.Errorf("ParseProcfile = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestParseRelease(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr bool
	}{
		{"heroku shape", "---\naddons: []\nconfig_vars:\n  PATH: /app/bin\ndefault_process_types:\n  web: npm start\n  worker: 'node w.js'\n  api: \"node \\\"api\\\".js\"\n", map[string]string{"web": "npm start", "worker": "node w.js", "api": `node "api".js`}, false},
		{"no defaults", "---\naddons: []\n", map[string]string{}, false},
		{"empty map", "---\ndefault_process_types: {}\n", map[string]string{}, false},
		{"inline map", "default_process_types: {web: x}\n", nil, true},
		{"bad entry", "default_process_types:\n  web\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRelease(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr || (!tt.wantErr && !maps.Equal(got, tt.want)) {
				t.Errorf("ParseRelease = %v, %v; want %v (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
