package provider

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/random"
)

// fakeController is an in-memory controller of the few calls the provider
// makes, which can fail any one of them.
type fakeController struct {
	mu         sync.Mutex
	apps       map[string]*controller.App     // by id
	releases   map[string]*controller.Release // by id
	routes     map[string][]*controller.Route // by app id
	formations map[string]*controller.Formation
	nextPort   int
	// fail makes the call of this name fail with a service_unavailable
	// error.
	fail string
	// before runs at the start of every call, with its name.
	before func(call string)
	calls  []string
}

var _ Controller = (*fakeController)(nil)

// redisArtifact is the artifact of the fake's "redis" app.
const redisArtifact = "art-redis"

// newFakeController returns a fake holding the app "redis" whose release
// has the server image, as bootstrap leaves it.
func newFakeController() *fakeController {
	f := &fakeController{
		apps:       map[string]*controller.App{},
		releases:   map[string]*controller.Release{},
		routes:     map[string][]*controller.Route{},
		formations: map[string]*controller.Formation{},
		nextPort:   controller.TCPRoutePortMin,
	}
	rel := &controller.Release{ID: random.UUID(), AppID: "app-redis", ArtifactID: redisArtifact}
	f.apps["app-redis"] = &controller.App{ID: "app-redis", Name: "redis", System: true, ReleaseID: rel.ID}
	f.releases[rel.ID] = rel
	return f
}

// call records a call and returns the error it is to fail with.
func (f *fakeController) call(name string) error {
	f.mu.Lock()
	before := f.before
	f.calls = append(f.calls, name)
	fail := f.fail == name
	f.mu.Unlock()
	if before != nil {
		before(name)
	}
	if fail {
		return httpjson.Errorf(httpjson.CodeServiceUnavailable, "%s failed", name)
	}
	return nil
}

func (f *fakeController) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// app finds an app by id or name; f.mu is held.
func (f *fakeController) app(idOrName string) (*controller.App, error) {
	for _, a := range f.apps {
		if a.ID == idOrName || a.Name == idOrName {
			return a, nil
		}
	}
	return nil, httpjson.NotFound("app %s not found", idOrName)
}

// appNames lists the names of the apps.
func (f *fakeController) appNames() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	for _, a := range f.apps {
		names = append(names, a.Name)
	}
	slices.Sort(names)
	return names
}

func (f *fakeController) App(_ context.Context, idOrName string) (*controller.App, error) {
	if err := f.call("App"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a, err := f.app(idOrName)
	if err != nil {
		return nil, err
	}
	c := *a
	return &c, nil
}

func (f *fakeController) AppRelease(_ context.Context, idOrName string) (*controller.Release, error) {
	if err := f.call("AppRelease"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a, err := f.app(idOrName)
	if err != nil {
		return nil, err
	}
	rel, ok := f.releases[a.ReleaseID]
	if !ok {
		return nil, httpjson.NotFound("app %s has no release", a.Name)
	}
	c := *rel
	return &c, nil
}

func (f *fakeController) CreateApp(_ context.Context, app *controller.App) error {
	if err := f.call("CreateApp"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.app(app.Name); err == nil {
		return httpjson.Errorf(httpjson.CodeObjectExists, "app %s exists", app.Name)
	}
	app.ID = random.UUID()
	c := *app
	c.Meta = maps.Clone(app.Meta)
	f.apps[app.ID] = &c
	return nil
}

func (f *fakeController) CreateRelease(_ context.Context, rel *controller.Release) error {
	if err := f.call("CreateRelease"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a, err := f.app(rel.AppID)
	if err != nil {
		return err
	}
	rel.ID, rel.AppID = random.UUID(), a.ID
	c := *rel
	f.releases[rel.ID] = &c
	return nil
}

func (f *fakeController) SetAppRelease(_ context.Context, app, releaseID string) (*controller.App, error) {
	if err := f.call("SetAppRelease"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a, err := f.app(app)
	if err != nil {
		return nil, err
	}
	if rel, ok := f.releases[releaseID]; !ok || rel.AppID != a.ID {
		return nil, httpjson.ValidationError("id", "release %s is not one of app %s", releaseID, a.Name)
	}
	a.ReleaseID = releaseID
	c := *a
	return &c, nil
}

func (f *fakeController) CreateRoute(_ context.Context, app string, route *controller.Route) error {
	if err := f.call("CreateRoute"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a, err := f.app(app)
	if err != nil {
		return err
	}
	for _, routes := range f.routes {
		for _, r := range routes {
			if route.Type == controller.RouteTypeTCP && route.Port != 0 && r.Port == route.Port {
				return httpjson.Errorf(httpjson.CodeConflict, "port %d has a route", route.Port)
			}
		}
	}
	route.ID, route.AppID = random.UUID(), a.ID
	if route.Type == controller.RouteTypeTCP && route.Port == 0 {
		route.Port = f.nextPort
		f.nextPort++
	}
	c := *route
	f.routes[a.ID] = append(f.routes[a.ID], &c)
	return nil
}

func (f *fakeController) PutFormation(_ context.Context, form *controller.Formation) error {
	if err := f.call("PutFormation"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a, err := f.app(form.AppID)
	if err != nil {
		return err
	}
	c := *form
	c.Processes = maps.Clone(form.Processes)
	f.formations[a.ID] = &c
	return nil
}

func (f *fakeController) DeleteApp(_ context.Context, idOrName string) (*controller.App, error) {
	if err := f.call("DeleteApp"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a, err := f.app(idOrName)
	if err != nil {
		return nil, err
	}
	delete(f.apps, a.ID)
	delete(f.routes, a.ID)
	delete(f.formations, a.ID)
	return a, nil
}
