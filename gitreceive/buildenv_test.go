package gitreceive_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/openflynn/flynn/controller"
)

const testCACert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

// TestBuildEnvReachesBuild: a build job gets the cluster's build settings
// under the app's env (the app's value wins), its CA certificates as
// FLYNN_CA_CERTS, read anew for every push; a controller without build
// settings (404) builds without them.
func TestBuildEnvReachesBuild(t *testing.T) {
	var (
		mu      sync.Mutex
		current *controller.BuildEnv
	)
	setBuildEnv := func(be *controller.BuildEnv) {
		mu.Lock()
		defer mu.Unlock()
		current = be
	}
	h := newHarnessWith(t, harnessOptions{buildEnv: func() *controller.BuildEnv {
		mu.Lock()
		defer mu.Unlock()
		return current
	}})
	app := h.createApp("example")
	h.setEnv(app, map[string]string{"SHARED": "app", "OWN": "app"})
	w := h.newWorkdir("example")

	tests := []struct {
		name     string
		buildEnv *controller.BuildEnv // nil: the controller answers 404
		want     map[string]string    // "": unset
	}{
		{
			name:     "cluster settings under the app's",
			buildEnv: &controller.BuildEnv{Env: map[string]string{"GOPROXY": "http://proxy.internal", "SHARED": "cluster"}, CACerts: testCACert},
			want:     map[string]string{"GOPROXY": "http://proxy.internal", "SHARED": "app", "OWN": "app", controller.CACertsEnv: testCACert},
		},
		{
			name:     "a change applies to the next push",
			buildEnv: &controller.BuildEnv{Env: map[string]string{"GOPROXY": "http://other.internal"}},
			want:     map[string]string{"GOPROXY": "http://other.internal", "SHARED": "app", controller.CACertsEnv: ""},
		},
		{
			name: "older controller",
			want: map[string]string{"GOPROXY": "", "SHARED": "app", controller.CACertsEnv: ""},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setBuildEnv(tt.buildEnv)
			w.commit(tt.name, map[string]string{"Procfile": "web: ./web\n", "n": strings.Repeat("x", i+1)})
			if out, _, err := w.push("main"); err != nil {
				t.Fatalf("push: %v\n%s", err, out)
			}
			env := h.runner.lastBuild().Env
			for k, want := range tt.want {
				if got, ok := env[k]; got != want || ok != (want != "") {
					t.Errorf("build env %s = %q (set %v), want %q", k, got, ok, want)
				}
			}
		})
	}
}
