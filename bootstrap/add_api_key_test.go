package bootstrap

import (
	"errors"
	"strings"
	"testing"
)

func TestAddAPIKey(t *testing.T) {
	tests := []struct {
		name     string
		steps    string
		setup    func(*harness)
		wantLine string // the cluster-add line
		wantErr  string
	}{
		{
			name:     "the secret goes to later steps",
			steps:    `{"id":"admin-key","action":"add-api-key","name":"admin"},{"id":"add","action":"cluster-add","command":"flynn cluster add default flynn.test - <<<{{admin-key}}"}`,
			wantLine: "flynn cluster add default flynn.test - <<<secret-of-admin",
		},
		{
			name:    "bad name",
			steps:   `{"id":"admin-key","action":"add-api-key","name":"an admin"}`,
			wantErr: `name "an admin" must match`,
		},
		{
			name:    "controller refuses",
			steps:   `{"id":"admin-key","action":"add-api-key","name":"admin"}`,
			setup:   func(h *harness) { h.ctrl.failAPIKey = errors.New("database is down") },
			wantErr: "create API key admin: database is down",
		},
		{
			name:    "a cluster-add line with the controller key is refused",
			steps:   `{"id":"add","action":"cluster-add","command":"flynn cluster add default flynn.test {{cluster_key}}"}`,
			wantErr: "command carries the controller key",
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
			res, err := h.run(t, m)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.ClusterAdd != tt.wantLine {
				t.Errorf("cluster-add line %q, want %q", res.ClusterAdd, tt.wantLine)
			}
			if len(h.ctrl.apiKeys) != 1 || h.ctrl.apiKeys[0].Name != "admin" || h.ctrl.key != "the-cluster-key" {
				t.Errorf("API keys %+v made with key %q; want admin, made with the controller key", h.ctrl.apiKeys, h.ctrl.key)
			}
			if n := strings.Count(h.out.String(), "secret-of-admin"); n != 1 {
				t.Errorf("the secret shows %d times, want only in the cluster-add line:\n%s", n, h.out.String())
			}
		})
	}
}
