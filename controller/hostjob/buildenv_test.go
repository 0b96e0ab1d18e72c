package hostjob

import (
	"testing"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/host"
)

// TestBuildEnv: the cluster's build settings reach the jobs of an app that
// is not a system app, processes and one-off runs alike, under the job's
// own env; a system app's jobs get nothing of them.
func TestBuildEnv(t *testing.T) {
	be := &controller.BuildEnv{
		Env: map[string]string{
			"GOPROXY":      "https://proxy.test", // nobody else sets it: the cluster's
			"A":            "cluster",            // the release sets it: the release's
			"B":            "cluster",            // the type sets it: the type's
			"C":            "cluster",            // a one-off request sets it: the request's
			"FLYNN_APP_ID": "cluster",            // the core's own variables win
		},
		CACerts: "PEM",
	}
	app := &controller.App{ID: "a1", Name: "example"}
	system := &controller.App{ID: "a1", Name: "example", System: true}
	const absent = "\x00absent"
	tests := []struct {
		name string
		job  *host.Job
		want map[string]string // absent: the variable is not set
	}{
		{
			name: "process",
			job:  ForAppProcess("h1", app, testRelease, testArtifact, "web", be),
			want: map[string]string{"GOPROXY": "https://proxy.test", "A": "release", "B": "type", "C": "cluster", "FLYNN_APP_ID": "a1", controller.CACertsEnv: "PEM"},
		},
		{
			name: "one-off",
			job: ForOneOff("h1", oneOff(func(o *OneOff) {
				o.BuildEnv, o.Type, o.Process = be, "", controller.ProcessType{}
				o.Env = map[string]string{"A": "release", "C": "request"}
			})),
			want: map[string]string{"GOPROXY": "https://proxy.test", "A": "release", "B": "cluster", "C": "request", "FLYNN_APP_ID": "a1", controller.CACertsEnv: "PEM"},
		},
		{
			name: "the app's own certificates variable wins",
			job: ForOneOff("h1", oneOff(func(o *OneOff) {
				o.BuildEnv, o.Env = be, map[string]string{controller.CACertsEnv: "MINE"}
			})),
			want: map[string]string{controller.CACertsEnv: "MINE", "GOPROXY": "https://proxy.test"},
		},
		{
			name: "no certificates: no variable",
			job:  ForAppProcess("h1", app, testRelease, testArtifact, "web", &controller.BuildEnv{Env: map[string]string{"X": "1"}}),
			want: map[string]string{"X": "1", controller.CACertsEnv: absent},
		},
		{
			name: "no settings",
			job:  ForAppProcess("h1", app, testRelease, testArtifact, "web", nil),
			want: map[string]string{"A": "release", "GOPROXY": absent, controller.CACertsEnv: absent},
		},
		{
			name: "system app process: nothing",
			job:  ForAppProcess("h1", system, testRelease, testArtifact, "router", be),
			want: map[string]string{"A": "release", "B": "release", "C": absent, "GOPROXY": absent, controller.CACertsEnv: absent},
		},
		{
			name: "system app one-off: nothing",
			job: ForOneOff("h1", oneOff(func(o *OneOff) {
				o.BuildEnv, o.App.System = be, true
			})),
			want: map[string]string{"A": "request", "GOPROXY": absent, controller.CACertsEnv: absent},
		},
		{
			name: "ForProcess: nothing",
			job:  ForProcess("h1", "example", testRelease, testArtifact, "web"),
			want: map[string]string{"GOPROXY": absent, controller.CACertsEnv: absent},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, want := range tt.want {
				got, ok := tt.job.Config.Env[k]
				switch {
				case want == absent && ok:
					t.Errorf("env[%s] = %q, want it unset", k, got)
				case want != absent && got != want:
					t.Errorf("env[%s] = %q (set %v), want %q", k, got, ok, want)
				}
			}
			if err := tt.job.Validate(); err != nil {
				t.Errorf("job does not validate: %v", err)
			}
		})
	}
	if len(be.Env) != 5 {
		t.Errorf("building jobs changed the settings: %v", be.Env)
	}
}
