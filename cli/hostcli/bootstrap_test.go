package hostcli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openflynn/flynn/bootstrap"
	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/host"
)

func TestBootstrap(t *testing.T) {
	dir, write := tempFiles(t)
	manifest := write("manifest.json", `{"steps": [{"id": "secret", "action": "gen-random"}]}`)
	images := write("images.json", `{}`)
	clusterAdd := write("cluster-add", "flynn cluster add -p PIN default flynn.test KEY\n")
	controllerJob := &host.ActiveJob{
		Job:   &host.Job{ID: "host1-ctl", Artifact: "controller", Metadata: map[string]string{controller.JobMetaAppID: "app1", controller.JobMetaAppName: "controller"}},
		State: host.StateUp,
	}

	tests := []struct {
		name       string
		jobs       []*host.ActiveJob
		args       []string
		wantCode   int
		wantStdout string // a substring
		wantStderr string // a prefix
	}{
		{
			name:       "fresh host",
			args:       []string{"bootstrap", "--images", images, "--cluster-add-file", filepath.Join(dir, "new-cluster-add"), manifest},
			wantStdout: " gen-random secret generated\n",
			wantStderr: "bootstrap took ",
		},
		{
			name:     "bootstrapped host",
			jobs:     []*host.ActiveJob{controllerJob},
			args:     []string{"bootstrap", "--images", images, "--cluster-add-file", clusterAdd, manifest},
			wantCode: 3,
			wantStderr: "flynn-host bootstrap: " + bootstrap.ErrBootstrapped.Error() + ": 1 jobs of controller are running\n" +
				"its cluster-add line (" + clusterAdd + "):\nflynn cluster add -p PIN default flynn.test KEY\n",
		},
		{
			name:       "no images manifest",
			args:       []string{"bootstrap", "--images", filepath.Join(dir, "none.json"), manifest},
			wantCode:   1,
			wantStderr: "flynn-host: read manifest: open " + filepath.Join(dir, "none.json") + ": no such file or directory (build the images with `make images`)\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHost(t, tt.jobs...)
			res := h.run(t, Env{}, tt.args...)
			if res.code != tt.wantCode || !strings.Contains(res.stdout, tt.wantStdout) || !strings.HasPrefix(res.stderr, tt.wantStderr) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d, stdout with %q, stderr starting %q", res.code, res.stdout, res.stderr, tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "new-cluster-add")); !os.IsNotExist(err) {
		t.Errorf("a manifest without a cluster-add step wrote a cluster-add file (stat: %v)", err)
	}
}

// tempFiles returns a test's temporary directory and a function that
// writes a file there and returns its path.
func tempFiles(t *testing.T) (dir string, write func(name, content string) string) {
	dir = t.TempDir()
	return dir, func(name, content string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
}
