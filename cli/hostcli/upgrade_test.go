package hostcli

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/pkg/authkey"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// fakeControllerCluster is a discoverd whose "controller" service is a
// controller holding one app, "controller" at v1 of flynn/controller:1,
// whose deployments complete at once. Both require the test key.
type fakeControllerCluster struct {
	discoverd string // URL

	mu sync.Mutex
	// hosts are the Host headers the controller was asked with.
	hosts map[string]bool
	rels  map[string]*controller.Release
	arts  map[string]*controller.Artifact
	cur   string // the current release's id
}

func newFakeControllerCluster(t *testing.T) *fakeControllerCluster {
	t.Helper()
	f := &fakeControllerCluster{
		hosts: map[string]bool{},
		rels:  map[string]*controller.Release{"r1": {ID: "r1", AppID: "a1", Version: 1, ArtifactID: "art1", Env: map[string]string{"FLYNN_CONTROLLER_KEY": testKey}}},
		arts:  map[string]*controller.Artifact{"art1": {ID: "art1", Type: controller.ArtifactTypeDocker, URI: "flynn/controller:1"}},
		cur:   "r1",
	}
	app := &controller.App{ID: "a1", Name: "controller", System: true}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /apps/{app}", func(w http.ResponseWriter, r *http.Request) {
		if a := r.PathValue("app"); a != app.ID && a != app.Name {
			httpjson.WriteError(w, httpjson.NotFound("no app %s", a))
			return
		}
		httpjson.Write(w, http.StatusOK, app)
	})
	mux.HandleFunc("GET /apps/a1/release", func(w http.ResponseWriter, _ *http.Request) {
		httpjson.Write(w, http.StatusOK, f.rels[f.cur])
	})
	mux.HandleFunc("GET /artifacts/{id}", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, f.arts[r.PathValue("id")])
	})
	mux.HandleFunc("POST /artifacts", func(w http.ResponseWriter, r *http.Request) {
		var a controller.Artifact
		if err := httpjson.Decode(w, r, 1<<20, &a); err != nil {
			httpjson.WriteError(w, err)
			return
		}
		a.ID = "art2"
		f.arts[a.ID] = &a
		httpjson.Write(w, http.StatusCreated, &a)
	})
	mux.HandleFunc("POST /apps/a1/releases", func(w http.ResponseWriter, r *http.Request) {
		var rel controller.Release
		if err := httpjson.Decode(w, r, 1<<20, &rel); err != nil {
			httpjson.WriteError(w, err)
			return
		}
		rel.ID, rel.Version = "r2", 2
		f.rels[rel.ID] = &rel
		httpjson.Write(w, http.StatusCreated, &rel)
	})
	mux.HandleFunc("POST /apps/a1/deploy", func(w http.ResponseWriter, r *http.Request) {
		var req controller.AppReleaseRequest
		if err := httpjson.Decode(w, r, 1<<20, &req); err != nil {
			httpjson.WriteError(w, err)
			return
		}
		f.cur = req.ReleaseID
		httpjson.Write(w, http.StatusOK, &controller.Deployment{ID: "d1", AppID: "a1", NewReleaseID: req.ReleaseID, Status: controller.DeploymentPending})
	})
	mux.HandleFunc("GET /apps/a1/deployments/d1", func(w http.ResponseWriter, _ *http.Request) {
		httpjson.Write(w, http.StatusOK, &controller.Deployment{ID: "d1", AppID: "a1", NewReleaseID: f.cur, Status: controller.DeploymentComplete})
	})
	ctrl := httptest.NewServer(authkey.Require(testKey, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.hosts[r.Host] = true
		mux.ServeHTTP(w, r)
	})))
	t.Cleanup(ctrl.Close)

	dmux := http.NewServeMux()
	dmux.HandleFunc("GET /services/controller/instances", func(w http.ResponseWriter, _ *http.Request) {
		httpjson.Write(w, http.StatusOK, []*discoverd.Instance{{ID: "c1", Addr: strings.TrimPrefix(ctrl.URL, "http://")}})
	})
	disc := httptest.NewServer(authkey.Require(testKey, dmux))
	t.Cleanup(disc.Close)
	f.discoverd = disc.URL
	return f
}

func TestUpgrade(t *testing.T) {
	dir, write := tempFiles(t)
	manifest := write("manifest.json", `{
  "controller": {"service": "controller", "key": "{{controller-key}}"},
  "steps": [
    {"id": "controller", "action": "run-app", "app": {"name": "controller"}, "image": "controller", "release": {"processes": {"api": {}}}},
    {"id": "redis", "action": "deploy-app", "app": {"name": "redis"}, "image": "redis", "release": {"processes": {"app": {}}}}
  ]
}`)
	newImages := write("new.json", `{"controller": {"ref": "flynn/controller:2"}, "redis": {"ref": "flynn/redis:2"}}`)
	oldImages := write("old.json", `{"controller": {"ref": "flynn/controller:1"}, "redis": {"ref": "flynn/redis:1"}}`)

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string // its last line
		wantRef    string // the image the controller app runs after
	}{
		{
			name:       "newer images",
			args:       []string{"upgrade", "--images", newImages, manifest},
			wantStdout: "controller: v1 → v2 (flynn/controller:2) deployed in 0.0s\nredis: not in this cluster; skipped\n",
			wantStderr: "upgrade took 0s: 1 deployed, 0 up to date, 1 skipped\n",
			wantRef:    "flynn/controller:2",
		},
		{
			name:       "same images",
			args:       []string{"upgrade", "--images", oldImages, manifest},
			wantStdout: "controller: up to date (flynn/controller:1)\nredis: not in this cluster; skipped\n",
			wantStderr: "upgrade took 0s: 0 deployed, 1 up to date, 1 skipped\n",
			wantRef:    "flynn/controller:1",
		},
		{
			name:       "no images manifest",
			args:       []string{"upgrade", "--images", filepath.Join(dir, "none.json"), manifest},
			wantCode:   1,
			wantStderr: "flynn-host: read manifest: open " + filepath.Join(dir, "none.json") + ": no such file or directory (build the images with `make images`)\n",
			wantRef:    "flynn/controller:1",
		},
		{
			name:       "no manifest",
			args:       []string{"upgrade", "--images", newImages},
			wantCode:   1,
			wantStderr: "flynn-host: usage: flynn-host upgrade [flags] MANIFEST\n",
			wantRef:    "flynn/controller:1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := newFakeControllerCluster(t)
			h := newFakeHost(t)
			res := h.run(t, Env{}, append([]string{tt.args[0], "--discoverd-url", fc.discoverd}, tt.args[1:]...)...)
			if res.code != tt.wantCode || res.stdout != tt.wantStdout || !strings.HasSuffix(res.stderr, tt.wantStderr) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d, stdout %q, stderr ending %q", res.code, res.stdout, res.stderr, tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
			fc.mu.Lock()
			defer fc.mu.Unlock()
			if ref := fc.arts[fc.rels[fc.cur].ArtifactID].URI; ref != tt.wantRef {
				t.Errorf("the controller app runs %s, want %s", ref, tt.wantRef)
			}
			if tt.wantCode == 0 && (len(fc.hosts) != 1 || !fc.hosts["controller.discoverd"]) {
				t.Errorf("the controller was asked as %v, want controller.discoverd alone", fc.hosts)
			}
		})
	}
}
