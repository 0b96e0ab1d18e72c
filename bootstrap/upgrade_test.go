package bootstrap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/controller"
	ctrlclient "github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/pkg/httpjson"
)

var _ Upgrader = (*ctrlclient.Client)(nil)

// errUnreachable is how a controller that is being replaced fails.
var errUnreachable = errors.New("dial controller.discoverd: connection refused")

// fakeUpgrader is a controller holding apps with their current releases.
// It hands out what it stores, not copies, so that a test sees any change
// Upgrade makes to what it read.
type fakeUpgrader struct {
	mu          sync.Mutex
	apps        map[string]*controller.App // by name
	artifacts   map[string]*controller.Artifact
	releases    map[string]*controller.Release
	current     map[string]string // app id → release id
	deployments map[string]*controller.Deployment
	// statuses are the states each deployment goes through, one per read.
	statuses []string
	// appErrs and pollErrs are how many App and Deployment calls fail with
	// errUnreachable before they answer (pollErrs < 0: all of them).
	appErrs, pollErrs int
	// fail makes the deployment of these apps fail with this error.
	fail map[string]string
	// calls records the calls, "Method arg".
	calls []string
}

func newFakeUpgrader() *fakeUpgrader {
	return &fakeUpgrader{
		apps: map[string]*controller.App{}, artifacts: map[string]*controller.Artifact{},
		releases: map[string]*controller.Release{}, current: map[string]string{},
		deployments: map[string]*controller.Deployment{},
		statuses:    []string{controller.DeploymentRunning, controller.DeploymentComplete},
	}
}

// add records an app at version with a release of ref, env and meta.
func (f *fakeUpgrader) add(name string, version int, ref string, env map[string]string) {
	id := "id-" + name
	f.apps[name] = &controller.App{ID: id, Name: name, System: true}
	art := &controller.Artifact{ID: "art-" + name, Type: controller.ArtifactTypeDocker, URI: ref}
	f.artifacts[art.ID] = art
	rel := &controller.Release{
		ID: fmt.Sprintf("rel-%s-%d", name, version), AppID: id, Version: version, ArtifactID: art.ID, Env: env,
		Processes: map[string]controller.ProcessType{"app": {Cmd: []string{name}, Service: name}},
		Meta:      map[string]string{"flynn-system-app": "true"},
	}
	f.releases[rel.ID] = rel
	f.current[id] = rel.ID
}

func (f *fakeUpgrader) record(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeUpgrader) App(_ context.Context, name string) (*controller.App, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("App %s", name)
	if f.appErrs > 0 {
		f.appErrs--
		return nil, errUnreachable
	}
	if a := f.apps[name]; a != nil {
		return a, nil
	}
	return nil, httpjson.NotFound("no app %s", name)
}

func (f *fakeUpgrader) AppRelease(_ context.Context, app string) (*controller.Release, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("AppRelease %s", app)
	if r := f.releases[f.current[app]]; r != nil {
		return r, nil
	}
	return nil, httpjson.NotFound("no release of %s", app)
}

func (f *fakeUpgrader) Artifact(_ context.Context, id string) (*controller.Artifact, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Artifact %s", id)
	if a := f.artifacts[id]; a != nil {
		return a, nil
	}
	return nil, httpjson.NotFound("no artifact %s", id)
}

func (f *fakeUpgrader) CreateArtifact(_ context.Context, a *controller.Artifact) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("CreateArtifact %s", a.URI)
	a.ID = fmt.Sprintf("art-%d", len(f.artifacts))
	f.artifacts[a.ID] = a
	return nil
}

func (f *fakeUpgrader) CreateRelease(_ context.Context, r *controller.Release) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("CreateRelease %s", r.AppID)
	if f.artifacts[r.ArtifactID] == nil {
		return httpjson.ValidationError("artifact", "no artifact %s", r.ArtifactID)
	}
	r.Version = f.releases[f.current[r.AppID]].Version + 1
	r.ID = fmt.Sprintf("rel-%s-%d", r.AppID, r.Version)
	f.releases[r.ID] = r
	return nil
}

func (f *fakeUpgrader) Deploy(_ context.Context, app, releaseID string) (*controller.Deployment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Deploy %s", app)
	d := &controller.Deployment{
		ID: "dep-" + app, AppID: app, OldReleaseID: f.current[app], NewReleaseID: releaseID,
		Status: controller.DeploymentPending,
	}
	f.deployments[d.ID] = d
	return d, nil
}

// Deployment moves the deployment on to its next status, the last one
// failed for an app in f.fail.
func (f *fakeUpgrader) Deployment(_ context.Context, app, id string) (*controller.Deployment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pollErrs != 0 {
		f.pollErrs--
		return nil, errUnreachable
	}
	d := f.deployments[id]
	if d == nil || d.AppID != app {
		return nil, httpjson.NotFound("no deployment %s", id)
	}
	n := slices.Index(f.statuses, d.Status) + 1
	d.Status = f.statuses[min(n, len(f.statuses)-1)]
	if d.Status == controller.DeploymentComplete {
		for name, a := range f.apps {
			if a.ID == app && f.fail[name] != "" {
				d.Status, d.Error = controller.DeploymentFailed, f.fail[name]
			}
		}
	}
	if d.Status == controller.DeploymentComplete {
		f.current[app] = d.NewReleaseID
	}
	c := *d
	return &c, nil
}

// deployed returns the app ids deployed to, in order.
func (f *fakeUpgrader) deployed() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if app, ok := strings.CutPrefix(c, "Deploy "); ok {
			out = append(out, app)
		}
	}
	return out
}

// upgradeManifest has an app started by run-app, one by scale-app with
// its run-app, one whose env names images, and one the cluster lacks.
const upgradeManifest = `{
  "controller": {"service": "controller", "key": "{{controller-key}}"},
  "steps": [
    {"id": "controller-key", "action": "gen-random", "value": "{{cluster_key}}"},
    {"id": "controller", "action": "run-app", "app": {"name": "controller"}, "image": "controller",
     "release": {"env": {"FLYNN_CONTROLLER_KEY": "{{controller-key}}"}, "processes": {"api": {}}}, "processes": {"api": 1}},
    {"id": "scheduler-scale", "action": "scale-app", "app": {"name": "scheduler"}, "image": "scheduler",
     "release": {"processes": {"scheduler": {}}}, "processes": {"scheduler": 1}},
    {"id": "scheduler", "action": "run-app", "app_step": "scheduler-scale"},
    {"id": "gitreceive", "action": "deploy-app", "app": {"name": "gitreceive"}, "image": "gitreceive",
     "release": {"env": {
       "FLYNN_CONTROLLER_KEY": "{{controller-key}}",
       "FLYNN_SLUGBUILDER_IMAGE": "{{image.slugbuilder}}",
       "FLYNN_STACK_SLUGBUILDER": "{{ stacks.slugbuilder }}",
       "FLYNN_BLOBSTORE_URL": "http://blobstore.{{domain}}",
       "MIXED": "{{image.slugbuilder}} on {{domain}}"
     }, "processes": {"app": {}}}, "processes": {"app": 1}},
    {"id": "redis", "action": "deploy-app", "app": {"name": "redis"}, "image": "redis",
     "release": {"processes": {"app": {}}}, "processes": {"app": 1}}
  ]
}`

// oldImages are the images the fake cluster runs.
var oldImages = map[string]string{
	"controller": "flynn/controller:1", "scheduler": "flynn/scheduler:1", "gitreceive": "flynn/gitreceive:1",
	"slugbuilder": "flynn/slugbuilder:1", "redis": "flynn/redis:1",
	"slugbuilder-trixie": "flynn/slugbuilder-trixie:1", "slugrunner-trixie": "flynn/slugrunner-trixie:1",
}

// secret is the controller key in every release's env, which no output
// may show.
const secret = "s3cret-controller-key"

// newUpgradeCluster is the cluster upgradeManifest bootstrapped with
// oldImages, some releases later: every app but redis.
func newUpgradeCluster() *fakeUpgrader {
	f := newFakeUpgrader()
	f.add("controller", 2, oldImages["controller"], map[string]string{"FLYNN_CONTROLLER_KEY": secret})
	f.add("scheduler", 1, oldImages["scheduler"], nil)
	f.add("gitreceive", 3, oldImages["gitreceive"], map[string]string{
		"FLYNN_CONTROLLER_KEY":    secret,
		"FLYNN_SLUGBUILDER_IMAGE": oldImages["slugbuilder"],
		"FLYNN_STACK_SLUGBUILDER": "flynn-trixie=" + oldImages["slugbuilder-trixie"],
		"FLYNN_BLOBSTORE_URL":     "http://blobstore.flynn.test",
		"MIXED":                   oldImages["slugbuilder"] + " on flynn.test",
		"ADDED_BY_OPERATOR":       "kept",
	})
	return f
}

func TestUpgrade(t *testing.T) {
	m, err := ParseManifest([]byte(upgradeManifest))
	if err != nil {
		t.Fatal(err)
	}
	upToDate := []string{
		"scheduler: up to date (flynn/scheduler:1)",
		"controller: up to date (flynn/controller:1)",
		"gitreceive: up to date (flynn/gitreceive:1)",
		"redis: not in this cluster; skipped",
	}
	tests := []struct {
		name          string
		images        map[string]string // changes to oldImages; "" deletes
		setup         func(*fakeUpgrader)
		deployTimeout time.Duration
		wantLines     []string
		wantErr       string // a substring; "" for success
		wantDeployed  []string
		// check looks further at the fake after the upgrade.
		check func(t *testing.T, f *fakeUpgrader, res *UpgradeResult)
	}{
		{
			name:      "up to date",
			wantLines: upToDate,
			check: func(t *testing.T, f *fakeUpgrader, res *UpgradeResult) {
				if len(f.artifacts) != 3 || len(f.releases) != 3 {
					t.Errorf("%d artifacts and %d releases, want the 3 and 3 there were", len(f.artifacts), len(f.releases))
				}
				want := []UpgradeOutcome{UpgradeUpToDate, UpgradeUpToDate, UpgradeUpToDate, UpgradeSkipped}
				var got []UpgradeOutcome
				for _, c := range res.Components {
					got = append(got, c.Outcome)
				}
				if !slices.Equal(got, want) {
					t.Errorf("outcomes %v, want %v", got, want)
				}
			},
		},
		{
			name:   "changed image",
			images: map[string]string{"gitreceive": "flynn/gitreceive:2"},
			wantLines: []string{
				upToDate[0], upToDate[1],
				"gitreceive: v3 → v4 (flynn/gitreceive:2) deployed in 1.0s",
				upToDate[3],
			},
			wantDeployed: []string{"id-gitreceive"},
			check: func(t *testing.T, f *fakeUpgrader, res *UpgradeResult) {
				old, rel := f.releases["rel-gitreceive-3"], f.releases["rel-id-gitreceive-4"]
				if rel == nil {
					t.Fatalf("no release v4 of gitreceive; releases %v", slices.Sorted(maps.Keys(f.releases)))
				}
				if f.current["id-gitreceive"] != rel.ID {
					t.Errorf("current release %s, want %s", f.current["id-gitreceive"], rel.ID)
				}
				if art := f.artifacts[rel.ArtifactID]; art == nil || art.URI != "flynn/gitreceive:2" || art.Type != controller.ArtifactTypeDocker {
					t.Errorf("artifact of v4 = %+v, want docker flynn/gitreceive:2", art)
				}
				if !reflect.DeepEqual(rel.Env, old.Env) || !reflect.DeepEqual(rel.Processes, old.Processes) || !reflect.DeepEqual(rel.Meta, old.Meta) {
					t.Errorf("v4 env, processes, meta = %v %v %v; want v3's %v %v %v", rel.Env, rel.Processes, rel.Meta, old.Env, old.Processes, old.Meta)
				}
				got := res.Components[2]
				want := ComponentUpgrade{App: "gitreceive", Outcome: UpgradeDeployed, OldVersion: 3, NewVersion: 4, Ref: "flynn/gitreceive:2", Deployment: "dep-id-gitreceive", Duration: time.Second}
				if got != want {
					t.Errorf("result %+v, want %+v", got, want)
				}
			},
		},
		{
			name:   "changed image env",
			images: map[string]string{"slugbuilder": "flynn/slugbuilder:2"},
			wantLines: []string{
				upToDate[0], upToDate[1],
				"gitreceive: v3 → v4 (flynn/gitreceive:1) deployed in 1.0s",
				upToDate[3],
			},
			wantDeployed: []string{"id-gitreceive"},
			check: func(t *testing.T, f *fakeUpgrader, _ *UpgradeResult) {
				old, rel := f.releases["rel-gitreceive-3"], f.releases["rel-id-gitreceive-4"]
				want := maps.Clone(old.Env)
				// MIXED names the domain too: the cluster's value stays.
				want["FLYNN_SLUGBUILDER_IMAGE"] = "flynn/slugbuilder:2"
				if !reflect.DeepEqual(rel.Env, want) {
					t.Errorf("v4 env = %v, want %v", rel.Env, want)
				}
				if old.Env["FLYNN_SLUGBUILDER_IMAGE"] != "flynn/slugbuilder:1" {
					t.Errorf("v3's env changed: %v", old.Env)
				}
			},
		},
		{
			name:   "deployment failed",
			images: map[string]string{"controller": "flynn/controller:2", "gitreceive": "flynn/gitreceive:2"},
			setup: func(f *fakeUpgrader) {
				f.fail = map[string]string{"controller": "api: new job crashed"}
			},
			wantLines:    []string{upToDate[0]},
			wantErr:      "upgrade controller: deployment dep-id-controller of v3 failed: api: new job crashed",
			wantDeployed: []string{"id-controller"},
			check: func(t *testing.T, f *fakeUpgrader, res *UpgradeResult) {
				if slices.Contains(f.calls, "App gitreceive") {
					t.Errorf("read the apps after the failed one: %v", f.calls)
				}
				if len(res.Components) != 1 || res.Components[0].App != "scheduler" {
					t.Errorf("result %+v, want the scheduler (first) alone done", res.Components)
				}
			},
		},
		{
			name:   "polling tolerates errors",
			images: map[string]string{"controller": "flynn/controller:2"},
			setup: func(f *fakeUpgrader) {
				f.appErrs, f.pollErrs = 2, 3
			},
			wantLines:    []string{upToDate[0], "controller: v2 → v3 (flynn/controller:2) deployed in 1.0s", upToDate[2], upToDate[3]},
			wantDeployed: []string{"id-controller"},
		},
		{
			name:          "deployment times out",
			images:        map[string]string{"controller": "flynn/controller:2"},
			setup:         func(f *fakeUpgrader) { f.pollErrs = -1 },
			deployTimeout: 50 * time.Millisecond,
			wantLines:     []string{upToDate[0]},
			wantErr:       "upgrade controller: deployment dep-id-controller (pending): gave up after 50ms: " + errUnreachable.Error(),
			wantDeployed:  []string{"id-controller"},
		},
		{
			// Bootstrapped from a manifest of flynn-images --later-stacks:
			// the stack joins gitreceive's env once its images are built.
			name:   "a stack built later",
			setup:  func(f *fakeUpgrader) { f.releases["rel-gitreceive-3"].Env["FLYNN_STACK_SLUGBUILDER"] = "" },
			images: map[string]string{},
			wantLines: []string{
				upToDate[0], upToDate[1],
				"gitreceive: v3 → v4 (flynn/gitreceive:1) deployed in 1.0s",
				upToDate[3],
			},
			wantDeployed: []string{"id-gitreceive"},
			check: func(t *testing.T, f *fakeUpgrader, _ *UpgradeResult) {
				if got := f.releases["rel-id-gitreceive-4"].Env["FLYNN_STACK_SLUGBUILDER"]; got != "flynn-trixie=flynn/slugbuilder-trixie:1" {
					t.Errorf("v4's FLYNN_STACK_SLUGBUILDER = %q, want the trixie stack's slugbuilder", got)
				}
			},
		},
		{
			name:   "a stack's image missing",
			images: map[string]string{"slugrunner-trixie": ""},
			wantLines: []string{
				upToDate[0], upToDate[1],
				"gitreceive: v3 → v4 (flynn/gitreceive:1) deployed in 1.0s",
				upToDate[3],
			},
			wantDeployed: []string{"id-gitreceive"},
			check: func(t *testing.T, f *fakeUpgrader, _ *UpgradeResult) {
				if got := f.releases["rel-id-gitreceive-4"].Env["FLYNN_STACK_SLUGBUILDER"]; got != "" {
					t.Errorf("v4's FLYNN_STACK_SLUGBUILDER = %q, want none: the stack lacks its slugrunner", got)
				}
			},
		},
		{
			name:    "missing image key",
			images:  map[string]string{"slugbuilder": ""},
			wantErr: `upgrade: step gitreceive (deploy-app): env FLYNN_SLUGBUILDER_IMAGE: no image "slugbuilder" in the images manifest`,
			check: func(t *testing.T, f *fakeUpgrader, _ *UpgradeResult) {
				if len(f.calls) != 0 {
					t.Errorf("called the controller: %v", f.calls)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newUpgradeCluster()
			if tt.setup != nil {
				tt.setup(f)
			}
			images := maps.Clone(oldImages)
			for k, v := range tt.images {
				if v == "" {
					delete(images, k)
				} else {
					images[k] = v
				}
			}
			// Each reading of the clock is a second after the one before.
			clock := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
			var out bytes.Buffer
			cfg := UpgradeConfig{
				Controller: f, Images: images, Out: &out,
				Now:          func() time.Time { clock = clock.Add(time.Second); return clock },
				PollInterval: time.Millisecond, DeployTimeout: 5 * time.Second, ReadyTimeout: 5 * time.Second,
			}
			if tt.deployTimeout != 0 {
				cfg.DeployTimeout = tt.deployTimeout
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := Upgrade(ctx, cfg, m, slog.New(slog.DiscardHandler))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("upgrade: %v\n%s", err, out.String())
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one with %q", err, tt.wantErr)
			}
			var lines []string
			if s := strings.TrimSuffix(out.String(), "\n"); s != "" {
				lines = strings.Split(s, "\n")
			}
			if !slices.Equal(lines, tt.wantLines) {
				t.Errorf("output:\n%s\nwant:\n%s", out.String(), strings.Join(tt.wantLines, "\n"))
			}
			if strings.Contains(out.String(), secret) || err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("an env value was printed")
			}
			if got := f.deployed(); !slices.Equal(got, tt.wantDeployed) {
				t.Errorf("deployed %v, want %v", got, tt.wantDeployed)
			}
			if tt.check != nil {
				tt.check(t, f, res)
			}
		})
	}
}

// TestUpgradePlanOfShippedManifest checks that upgrading with the shipped
// manifest visits each of its apps once, in order, with the image env
// values gitreceive names.
func TestUpgradePlanOfShippedManifest(t *testing.T) {
	plan, err := upgradePlan(readTestManifest(t), testImages)
	if err != nil {
		t.Fatal(err)
	}
	var apps []string
	for _, c := range plan {
		apps = append(apps, c.app)
		if c.ref != testImages[c.app] {
			t.Errorf("%s: ref %s, want %s", c.app, c.ref, testImages[c.app])
		}
		if c.app != "gitreceive" && len(c.env) != 0 {
			t.Errorf("%s: image env %v, want none", c.app, c.env)
		}
		if c.app == "gitreceive" {
			want := map[string]string{
				"FLYNN_SLUGBUILDER_IMAGE": "flynn/slugbuilder:1",
				"FLYNN_SLUGRUNNER_IMAGE":  "flynn/slugrunner:1",
				"FLYNN_STACK_SLUGBUILDER": "flynn-trixie=flynn/slugbuilder-trixie:1",
				"FLYNN_STACK_SLUGRUNNER":  "flynn-trixie=flynn/slugrunner-trixie:1",
			}
			if !reflect.DeepEqual(c.env, want) {
				t.Errorf("gitreceive: image env %v, want %v", c.env, want)
			}
		}
	}
	want := []string{"scheduler", "discoverd", "postgres", "controller", "logaggregator", "blobstore", "router", "gitreceive", "dashboard", "postgres-api", "redis", "redis-api"}
	if !slices.Equal(apps, want) {
		t.Errorf("apps %v, want %v", apps, want)
	}
}
