package hostcli

import (
	"testing"

	"github.com/openflynn/flynn/host"
)

func TestLog(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantQuery  string
		wantStdout string
		wantStderr string
	}{
		{"both streams", []string{"log", "host1-web"}, "", "one\nthree\n", "two\n"},
		{"options", []string{"log", "-f", "-n", "3", "--stream", "stderr", "host1-web"}, "follow=true&stream=stderr&tail=3", "one\nthree\n", "two\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHost(t, fixtureJobs()...)
			h.logs["host1-web"] = []host.LogLine{
				{Stream: host.StreamStdout, Data: "one\n"},
				{Stream: host.StreamStderr, Data: "two\n"},
				{Stream: host.StreamStdout, Data: "three\n"},
			}
			res := h.run(t, Env{}, tt.args...)
			if res.code != 0 || res.stdout != tt.wantStdout || res.stderr != tt.wantStderr {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 0, %q, %q", res.code, res.stdout, res.stderr, tt.wantStdout, tt.wantStderr)
			}
			if got := h.lastLogQuery(); got != tt.wantQuery {
				t.Fatalf("query %q, want %q", got, tt.wantQuery)
			}
		})
	}

	h := newFakeHost(t)
	res := h.run(t, Env{}, "log", "host1-nope")
	if want := "flynn-host: not_found: no job host1-nope\n"; res.code != 1 || res.stderr != want {
		t.Fatalf("log of an unknown job: exit %d, stderr %q; want exit 1 and %q", res.code, res.stderr, want)
	}
}
