package hostcli

import (
	"reflect"
	"testing"
)

func TestStop(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		wantCode    int
		wantStdout  string
		wantStderr  string
		wantStopped []string
	}{
		{
			name:        "each job stopped in turn",
			args:        []string{"stop", "host1-web", "host1-pending"},
			wantStdout:  "host1-web down\nhost1-pending down\n",
			wantStopped: []string{"host1-web", "host1-pending"},
		},
		{
			name:        "an unknown job ends the list",
			args:        []string{"stop", "host1-web", "host1-nope", "host1-pending"},
			wantCode:    1,
			wantStdout:  "host1-web down\n",
			wantStderr:  "flynn-host: not_found: no job host1-nope\n",
			wantStopped: []string{"host1-web"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHost(t, fixtureJobs()...)
			res := h.run(t, Env{}, tt.args...)
			if res.code != tt.wantCode || res.stdout != tt.wantStdout || res.stderr != tt.wantStderr {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d, %q, %q", res.code, res.stdout, res.stderr, tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
			if !reflect.DeepEqual(h.stoppedJobs(), tt.wantStopped) {
				t.Fatalf("stopped %v, want %v", h.stoppedJobs(), tt.wantStopped)
			}
		})
	}
}
