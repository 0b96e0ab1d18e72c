package bootstrap

import (
	"context"
	"errors"
	"sync"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/random"
)

// fakeHost is a host that records the jobs it is given.
type fakeHost struct {
	mu      sync.Mutex
	jobs    []*host.ActiveJob
	stopped []string
}

var (
	_ Host       = (*fakeHost)(nil)
	_ JobStopper = (*fakeHost)(nil)
)

func (h *fakeHost) Status(context.Context) (*host.HostStatus, error) {
	return &host.HostStatus{ID: "h1", ExternalIP: "127.0.0.1"}, nil
}

func (h *fakeHost) ListJobs(context.Context) ([]*host.ActiveJob, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*host.ActiveJob, len(h.jobs))
	for i, j := range h.jobs {
		c := *j
		out[i] = &c
	}
	return out, nil
}

func (h *fakeHost) AddJob(_ context.Context, j *host.Job) (*host.ActiveJob, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	aj := &host.ActiveJob{Job: j, HostID: "h1", State: host.StateUp}
	h.jobs = append(h.jobs, aj)
	return aj, nil
}

// StopJob ends the job at once.
func (h *fakeHost) StopJob(_ context.Context, id string) (*host.ActiveJob, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, j := range h.jobs {
		if j.Job.ID == id {
			j.State = host.StateDown
			h.stopped = append(h.stopped, id)
			return j, nil
		}
	}
	return nil, errors.New("no such job")
}

// fakeDiscoverd answers every service with one instance at addr.
type fakeDiscoverd struct{ addr string }

func (d fakeDiscoverd) Instances(context.Context, string) ([]*discoverd.Instance, error) {
	return []*discoverd.Instance{{Addr: d.addr}}, nil
}

// fakeController records what the steps create.
type fakeController struct {
	url, key     string
	apps         []*controller.App
	artifacts    map[string]*controller.Artifact
	releases     map[string]*controller.Release
	appRelease   map[string]string
	formations   []*controller.Formation
	routes       map[string][]*controller.Route
	apiKeys      []*controller.APIKey
	providers    []*controller.Provider
	failCreate   error // returned by CreateApp when set
	failAPIKey   error // returned by CreateAPIKey when set
	failProvider error // returned by CreateProvider when set
}

var _ Controller = (*fakeController)(nil)

func newFakeController() *fakeController {
	return &fakeController{
		artifacts: map[string]*controller.Artifact{}, releases: map[string]*controller.Release{},
		appRelease: map[string]string{}, routes: map[string][]*controller.Route{},
	}
}

func (c *fakeController) CreateApp(_ context.Context, a *controller.App) error {
	if c.failCreate != nil {
		return c.failCreate
	}
	c.apps = append(c.apps, a)
	return nil
}

func (c *fakeController) CreateArtifact(_ context.Context, a *controller.Artifact) error {
	a.ID = random.UUID()
	c.artifacts[a.ID] = a
	return nil
}

func (c *fakeController) CreateRelease(_ context.Context, r *controller.Release) error {
	c.releases[r.ID] = r
	return nil
}

func (c *fakeController) SetAppRelease(_ context.Context, app, releaseID string) (*controller.App, error) {
	c.appRelease[app] = releaseID
	return &controller.App{ID: app, ReleaseID: releaseID}, nil
}

func (c *fakeController) PutFormation(_ context.Context, f *controller.Formation) error {
	c.formations = append(c.formations, f)
	return nil
}

func (c *fakeController) CreateRoute(_ context.Context, app string, r *controller.Route) error {
	c.routes[app] = append(c.routes[app], r)
	return nil
}

// CreateAPIKey makes a key whose secret is "secret-of-NAME".
func (c *fakeController) CreateAPIKey(_ context.Context, name string) (*controller.APIKey, error) {
	if c.failAPIKey != nil {
		return nil, c.failAPIKey
	}
	k := &controller.APIKey{ID: random.UUID(), Name: name, Secret: "secret-of-" + name}
	c.apiKeys = append(c.apiKeys, k)
	return k, nil
}

func (c *fakeController) CreateProvider(_ context.Context, p *controller.Provider) error {
	if c.failProvider != nil {
		return c.failProvider
	}
	p.ID = random.UUID()
	c.providers = append(c.providers, p)
	return nil
}
