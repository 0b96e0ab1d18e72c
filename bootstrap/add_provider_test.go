package bootstrap

import (
	"errors"
	"strings"
	"testing"
)

func TestAddProvider(t *testing.T) {
	const key = `{"id":"postgres-api-key","action":"gen-random","value":"the-provider-key"}`
	tests := []struct {
		name     string
		steps    string
		setup    func(*harness)
		wantURL  string // the URL the controller got
		wantLine string // the end of the step's line
		wantErr  string
	}{
		{
			name:     "the key goes into the URL, not the line",
			steps:    key + `,{"id":"postgres-provider","action":"add-provider","name":"postgres","url":"http://:{{postgres-api-key}}@postgres-api.discoverd/databases"}`,
			wantURL:  "http://:the-provider-key@postgres-api.discoverd/databases",
			wantLine: "add-provider postgres-provider postgres http://:(redacted)@postgres-api.discoverd/databases",
		},
		{
			name:    "bad name",
			steps:   `{"id":"p","action":"add-provider","name":"Postgres","url":"http://postgres-api.discoverd/databases"}`,
			wantErr: `name "Postgres" must match`,
		},
		{
			name:    "not an http URL, refused without showing the key",
			steps:   key + `,{"id":"p","action":"add-provider","name":"postgres","url":"ftp://:{{postgres-api-key}}@postgres-api.discoverd/x"}`,
			wantErr: "url ftp://:(redacted)@postgres-api.discoverd/x: want an http(s) URL with a host",
		},
		{
			name:    "unknown value",
			steps:   `{"id":"p","action":"add-provider","name":"postgres","url":"http://:{{nope}}@postgres-api.discoverd/databases"}`,
			wantErr: "unknown value nope",
		},
		{
			name:    "controller refuses",
			steps:   `{"id":"p","action":"add-provider","name":"postgres","url":"http://postgres-api.discoverd/databases"}`,
			setup:   func(h *harness) { h.ctrl.failProvider = errors.New("object_exists: name: provider name is taken") },
			wantErr: "create provider postgres: object_exists",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if tt.setup != nil {
				tt.setup(h)
			}
			m, err := ParseManifest([]byte(`{"controller":{"service":"controller","key":"{{cluster_key}}"},"steps":[` + tt.steps + `]}`))
			if err != nil {
				t.Fatal(err)
			}
			_, err = h.run(t, m)
			if strings.Contains(h.out.String(), "the-provider-key") || err != nil && strings.Contains(err.Error(), "the-provider-key") {
				t.Errorf("the key shows: output %q, error %v", h.out.String(), err)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(h.ctrl.providers) != 1 || h.ctrl.providers[0].Name != "postgres" || h.ctrl.providers[0].URL != tt.wantURL || h.ctrl.key != "the-cluster-key" {
				t.Fatalf("providers %+v made with key %q; want postgres at %s, made with the controller key", h.ctrl.providers, h.ctrl.key, tt.wantURL)
			}
			if line := strings.TrimSpace(h.out.String()); !strings.HasSuffix(line, tt.wantLine) {
				t.Errorf("output %q, want it to end with %q", line, tt.wantLine)
			}
		})
	}
}
