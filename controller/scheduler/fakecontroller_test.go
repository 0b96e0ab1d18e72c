package scheduler

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/random"
)

// testController is what the tests need of a controller: the scheduler's
// Controller and the calls a user makes. Both *controller/client.Client
// (on a real controller on Postgres) and *fakeController implement it, so
// one test body runs against either.
type testController interface {
	Controller
	CreateApp(ctx context.Context, app *controller.App) error
	UpdateApp(ctx context.Context, idOrName string, u controller.AppUpdate) (*controller.App, error)
	CreateArtifact(ctx context.Context, a *controller.Artifact) error
	CreateRelease(ctx context.Context, rel *controller.Release) error
	SetAppRelease(ctx context.Context, app, releaseID string) (*controller.App, error)
	Job(ctx context.Context, app, id string) (*controller.Job, error)
	Jobs(ctx context.Context, app string) ([]*controller.Job, error)
	ActiveJobs(ctx context.Context, app string) ([]*controller.Job, error)
	PatchBuildEnv(ctx context.Context, p controller.BuildEnvPatch) (*controller.BuildEnv, error)
}

var _ testController = (*fakeController)(nil)

// fakeController is an in-memory controller with the store's rules (see
// controller/postgres): releases numbered per app, formations that must
// name the release's types, deployments recorded when an app's release is
// set (web=1 on a first deploy), a finished deployment that cannot change,
// a failed one that puts the app back at its old release, jobs merged as
// the store merges them, and an event stream of every change.
type fakeController struct {
	mu          sync.Mutex
	apps        []*controller.App // creation order
	artifacts   map[string]*controller.Artifact
	releases    map[string]*controller.Release
	formations  []*controller.Formation // creation order
	deployments []*controller.Deployment
	jobs        []*controller.Job
	buildEnv    controller.BuildEnv
	// buildEnvReads counts BuildEnv calls.
	buildEnvReads int
	nextEvent     int64
	subs          map[*eventSub]bool
	// down, when set, is the answer to formation listings, job reports
	// and reads of apps, releases and artifacts: the controller's own
	// database is gone.
	down error
}

// setDown makes formation listings and job reports fail with err (nil:
// answer again).
func (c *fakeController) setDown(err error) {
	c.mu.Lock()
	c.down = err
	c.mu.Unlock()
}

func newFakeController() *fakeController {
	return &fakeController{artifacts: map[string]*controller.Artifact{}, releases: map[string]*controller.Release{}, subs: map[*eventSub]bool{}}
}

// clone deep-copies v through JSON, so that callers never share the
// fake's state (as they would not share a server's).
func clone[T any](v *T) *T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return &out
}

func cloneAll[T any](vs []*T) []*T {
	out := make([]*T, 0, len(vs))
	for _, v := range vs {
		out = append(out, clone(v))
	}
	return out
}

// emitLocked sends an event of obj to every subscriber that wants it.
func (c *fakeController) emitLocked(appID, objectType, objectID, op string, obj any) {
	data, err := json.Marshal(obj)
	if err != nil {
		panic(err)
	}
	c.nextEvent++
	e := &controller.Event{ID: c.nextEvent, AppID: appID, ObjectType: objectType, ObjectID: objectID, Op: op, Data: data, CreatedAt: time.Now()}
	for sub := range c.subs {
		if sub.wants(e) {
			sub.push(e)
		}
	}
}

func (c *fakeController) appLocked(idOrName string) (*controller.App, error) {
	for _, a := range c.apps {
		if a.ID == idOrName || a.Name == idOrName {
			return a, nil
		}
	}
	return nil, httpjson.NotFound("app %q not found", idOrName)
}

func (c *fakeController) releaseOfAppLocked(app *controller.App, id string) (*controller.Release, error) {
	rel, ok := c.releases[id]
	if !ok {
		return nil, httpjson.ValidationError("release", "release %q does not exist", id)
	}
	if rel.AppID != app.ID {
		return nil, httpjson.ValidationError("release", "release %s belongs to another app", rel.ID)
	}
	return rel, nil
}

func (c *fakeController) CreateApp(_ context.Context, app *controller.App) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !controller.ValidAppName(app.Name) {
		return httpjson.ValidationError("name", "invalid app name %q", app.Name)
	}
	if _, err := c.appLocked(app.Name); err == nil {
		return httpjson.Errorf(httpjson.CodeObjectExists, "app %s exists", app.Name)
	}
	app.ID = random.UUID()
	if app.Strategy == "" {
		app.Strategy = controller.StrategyOneByOne
	}
	app.CreatedAt, app.UpdatedAt = time.Now(), time.Now()
	c.apps = append(c.apps, clone(app))
	c.emitLocked(app.ID, controller.ObjectTypeApp, app.ID, controller.OpCreate, app)
	return nil
}

func (c *fakeController) App(_ context.Context, idOrName string) (*controller.App, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down != nil {
		return nil, c.down
	}
	a, err := c.appLocked(idOrName)
	if err != nil {
		return nil, err
	}
	return clone(a), nil
}

func (c *fakeController) Apps(context.Context) ([]*controller.App, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return cloneAll(c.apps), nil
}

func (c *fakeController) UpdateApp(_ context.Context, idOrName string, u controller.AppUpdate) (*controller.App, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, err := c.appLocked(idOrName)
	if err != nil {
		return nil, err
	}
	if u.Strategy != nil {
		if !controller.ValidStrategy(*u.Strategy) {
			return nil, httpjson.ValidationError("strategy", "unknown strategy %q", *u.Strategy)
		}
		a.Strategy = *u.Strategy
	}
	if u.Meta != nil {
		a.Meta = maps.Clone(u.Meta)
	}
	a.UpdatedAt = time.Now()
	c.emitLocked(a.ID, controller.ObjectTypeApp, a.ID, controller.OpUpdate, a)
	return clone(a), nil
}

func (c *fakeController) CreateArtifact(_ context.Context, a *controller.Artifact) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	a.ID, a.CreatedAt = random.UUID(), time.Now()
	c.artifacts[a.ID] = clone(a)
	return nil
}

func (c *fakeController) Artifact(_ context.Context, id string) (*controller.Artifact, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down != nil {
		return nil, c.down
	}
	a, ok := c.artifacts[id]
	if !ok {
		return nil, httpjson.NotFound("artifact %q not found", id)
	}
	return clone(a), nil
}

func (c *fakeController) CreateRelease(_ context.Context, rel *controller.Release) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	app, err := c.appLocked(rel.AppID)
	if err != nil {
		return httpjson.ValidationError("app", "app %q does not exist", rel.AppID)
	}
	if _, ok := c.artifacts[rel.ArtifactID]; rel.ArtifactID != "" && !ok {
		return httpjson.ValidationError("artifact", "artifact %q does not exist", rel.ArtifactID)
	}
	version := 1
	for _, r := range c.releases {
		if r.AppID == app.ID {
			version++
		}
	}
	rel.ID, rel.AppID, rel.Version, rel.CreatedAt = random.UUID(), app.ID, version, time.Now()
	c.releases[rel.ID] = clone(rel)
	c.emitLocked(app.ID, controller.ObjectTypeRelease, rel.ID, controller.OpCreate, rel)
	return nil
}

func (c *fakeController) Release(_ context.Context, id string) (*controller.Release, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down != nil {
		return nil, c.down
	}
	r, ok := c.releases[id]
	if !ok {
		return nil, httpjson.NotFound("release %q not found", id)
	}
	return clone(r), nil
}

func (c *fakeController) formationLocked(appID, releaseID string) (int, *controller.Formation) {
	for i, f := range c.formations {
		if f.AppID == appID && f.ReleaseID == releaseID {
			return i, f
		}
	}
	return -1, nil
}

func (c *fakeController) PutFormation(_ context.Context, f *controller.Formation) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.putFormationLocked(f, false)
}

func (c *fakeController) RaiseFormation(_ context.Context, f *controller.Formation) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.putFormationLocked(f, true)
}

func (c *fakeController) putFormationLocked(f *controller.Formation, raise bool) error {
	app, err := c.appLocked(f.AppID)
	if err != nil {
		return err
	}
	rel, ok := c.releases[f.ReleaseID]
	if !ok {
		return httpjson.NotFound("release %q not found", f.ReleaseID)
	}
	if rel.AppID != app.ID {
		return httpjson.ValidationError("release", "release %s belongs to another app", rel.ID)
	}
	for _, name := range slices.Sorted(maps.Keys(f.Processes)) {
		if _, ok := rel.Processes[name]; !ok {
			return httpjson.ValidationError("processes."+name, "release %s has no process type %q", controller.ReleaseVersion(rel.Version), name)
		}
		if f.Processes[name] < 0 {
			return httpjson.ValidationError("processes."+name, "count must not be negative")
		}
	}
	saved := &controller.Formation{AppID: app.ID, ReleaseID: rel.ID, Processes: maps.Clone(f.Processes), UpdatedAt: time.Now()}
	if saved.Processes == nil {
		saved.Processes = map[string]int{}
	}
	op := controller.OpUpdate
	if i, old := c.formationLocked(app.ID, rel.ID); old != nil {
		if raise {
			for typ, n := range old.Processes {
				saved.Processes[typ] = max(saved.Processes[typ], n)
			}
		}
		saved.CreatedAt = old.CreatedAt
		c.formations[i] = saved
	} else {
		op, saved.CreatedAt = controller.OpCreate, saved.UpdatedAt
		c.formations = append(c.formations, saved)
	}
	*f = *clone(saved)
	c.emitLocked(app.ID, controller.ObjectTypeFormation, app.ID+":"+rel.ID, op, saved)
	return nil
}

func (c *fakeController) Formation(_ context.Context, appIDOrName, releaseID string) (*controller.Formation, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	app, err := c.appLocked(appIDOrName)
	if err != nil {
		return nil, err
	}
	if _, f := c.formationLocked(app.ID, releaseID); f != nil {
		return clone(f), nil
	}
	return nil, httpjson.NotFound("formation not found")
}

func (c *fakeController) AllFormations(context.Context) ([]*controller.Formation, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down != nil {
		return nil, c.down
	}
	return cloneAll(c.formations), nil
}

func (c *fakeController) DeleteFormation(_ context.Context, appIDOrName, releaseID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	app, err := c.appLocked(appIDOrName)
	if err != nil {
		return err
	}
	i, f := c.formationLocked(app.ID, releaseID)
	if f == nil {
		return httpjson.NotFound("formation not found")
	}
	c.formations = slices.Delete(c.formations, i, i+1)
	c.emitLocked(app.ID, controller.ObjectTypeFormation, app.ID+":"+releaseID, controller.OpDelete, f)
	return nil
}

// SetAppRelease deploys a release as controller/postgres's Deploy does.
func (c *fakeController) SetAppRelease(_ context.Context, appIDOrName, releaseID string) (*controller.App, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	app, err := c.appLocked(appIDOrName)
	if err != nil {
		return nil, err
	}
	rel, err := c.releaseOfAppLocked(app, releaseID)
	if err != nil {
		return nil, err
	}
	if app.ReleaseID == rel.ID {
		return nil, httpjson.Errorf(httpjson.CodePreconditionFailed, "release is already the app's current release")
	}
	processes := map[string]int{}
	if _, f := c.formationLocked(app.ID, app.ReleaseID); app.ReleaseID != "" && f != nil {
		processes = maps.Clone(f.Processes)
	}
	if _, web := rel.Processes["web"]; web && len(processes) == 0 {
		first := app.ReleaseID == "" || c.releases[app.ReleaseID].ArtifactID == ""
		if first {
			processes = map[string]int{"web": 1}
		}
	}
	total := 0
	for _, n := range processes {
		total += n
	}
	d := &controller.Deployment{ID: random.UUID(), AppID: app.ID, OldReleaseID: app.ReleaseID, NewReleaseID: rel.ID,
		Strategy: app.Strategy, Status: controller.DeploymentPending, Processes: processes, CreatedAt: time.Now()}
	busy := false // as the store: an unfinished deployment of the app
	for _, o := range c.deployments {
		if o.AppID == app.ID && (o.Status == controller.DeploymentPending || o.Status == controller.DeploymentRunning) {
			busy = true
		}
	}
	if total == 0 && !busy {
		now := time.Now()
		d.Status, d.FinishedAt = controller.DeploymentComplete, &now
	}
	c.deployments = append(c.deployments, d)
	prev := app.ReleaseID
	app.ReleaseID, app.UpdatedAt = rel.ID, time.Now()
	c.emitLocked(app.ID, controller.ObjectTypeAppRelease, app.ID, controller.OpUpdate,
		map[string]string{"app": app.ID, "release": rel.ID, "prev_release": prev, "deployment": d.ID})
	c.emitLocked(app.ID, controller.ObjectTypeDeployment, d.ID, controller.OpCreate, d)
	return clone(app), nil
}

func (c *fakeController) Deployments(_ context.Context, appIDOrName string) ([]*controller.Deployment, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	app, err := c.appLocked(appIDOrName)
	if err != nil {
		return nil, err
	}
	var out []*controller.Deployment
	for _, d := range c.deployments {
		if d.AppID == app.ID {
			out = append(out, clone(d))
		}
	}
	return out, nil
}

// UpdateDeployment records progress as controller/postgres's Update does.
func (c *fakeController) UpdateDeployment(_ context.Context, appIDOrName, id string, u controller.DeploymentUpdate) (*controller.Deployment, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	app, err := c.appLocked(appIDOrName)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(c.deployments, func(d *controller.Deployment) bool { return d.ID == id && d.AppID == app.ID })
	if i < 0 {
		return nil, httpjson.NotFound("deployment %q not found", id)
	}
	d := c.deployments[i]
	if d.Status == controller.DeploymentComplete || d.Status == controller.DeploymentFailed {
		return nil, httpjson.Errorf(httpjson.CodePreconditionFailed, "deployment %s is %s already", id, d.Status)
	}
	d.Status, d.Error, d.FinishedAt = u.Status, u.Error, nil
	if u.Status == controller.DeploymentComplete || u.Status == controller.DeploymentFailed {
		now := time.Now()
		d.FinishedAt = &now
	}
	c.emitLocked(app.ID, controller.ObjectTypeDeployment, d.ID, controller.OpUpdate, d)
	if d.Status == controller.DeploymentFailed && app.ReleaseID == d.NewReleaseID {
		app.ReleaseID, app.UpdatedAt = d.OldReleaseID, time.Now()
		c.emitLocked(app.ID, controller.ObjectTypeAppRelease, app.ID, controller.OpUpdate,
			map[string]string{"app": app.ID, "release": d.OldReleaseID, "prev_release": d.NewReleaseID, "deployment": d.ID})
	}
	return clone(d), nil
}

// PutJob creates or updates a job as controller/postgres's JobRepo.Put
// does: ended fields and the exit status are kept once set, and empty
// metadata keeps the recorded one.
func (c *fakeController) PutJob(_ context.Context, j *controller.Job) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down != nil {
		return c.down
	}
	app, err := c.appLocked(j.AppID)
	if err != nil {
		return err
	}
	if _, err := c.releaseOfAppLocked(app, j.ReleaseID); err != nil {
		return err
	}
	if !controller.ValidJobState(j.State) {
		return httpjson.ValidationError("state", "invalid job state %q", j.State)
	}
	op := controller.OpUpdate
	i := slices.IndexFunc(c.jobs, func(x *controller.Job) bool { return x.ID == j.ID })
	saved := clone(j)
	saved.AppID = app.ID
	if saved.Meta == nil {
		saved.Meta = map[string]string{}
	}
	now := time.Now()
	if i < 0 {
		op, saved.CreatedAt = controller.OpCreate, now
		if saved.Args == nil {
			saved.Args = []string{}
		}
		c.jobs = append(c.jobs, saved)
	} else {
		old := c.jobs[i]
		if old.AppID != saved.AppID || old.ReleaseID != saved.ReleaseID {
			return &httpjson.Error{Code: httpjson.CodeConflict, Field: "release", Message: "job " + j.ID + " belongs to another app or release"}
		}
		// An update changes the host, state and times only.
		saved.CreatedAt, saved.Args, saved.Type = old.CreatedAt, old.Args, old.Type
		if saved.ExitStatus == nil {
			saved.ExitStatus = old.ExitStatus
		}
		if saved.StartedAt == nil {
			saved.StartedAt = old.StartedAt
		}
		if saved.EndedAt == nil {
			saved.EndedAt = old.EndedAt
		}
		if len(saved.Meta) == 0 {
			saved.Meta = old.Meta
		}
		if saved.Error == "" {
			saved.Error = old.Error
		}
		c.jobs[i] = saved
	}
	saved.UpdatedAt = now
	*j = *clone(saved)
	c.emitLocked(app.ID, controller.ObjectTypeJob, j.ID, op, saved)
	return nil
}

func (c *fakeController) Job(_ context.Context, appIDOrName, id string) (*controller.Job, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	app, err := c.appLocked(appIDOrName)
	if err != nil {
		return nil, err
	}
	for _, j := range c.jobs {
		if j.ID == id && j.AppID == app.ID {
			return clone(j), nil
		}
	}
	return nil, httpjson.NotFound("job %q not found", id)
}

func (c *fakeController) listJobs(appIDOrName string, activeOnly bool) ([]*controller.Job, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	app, err := c.appLocked(appIDOrName)
	if err != nil {
		return nil, err
	}
	var out []*controller.Job
	for _, j := range c.jobs {
		ended := j.State == controller.JobStateDown || j.State == controller.JobStateCrashed || j.State == controller.JobStateFailed
		if j.AppID == app.ID && !(activeOnly && ended) {
			out = append(out, clone(j))
		}
	}
	return out, nil
}

func (c *fakeController) Jobs(_ context.Context, app string) ([]*controller.Job, error) {
	return c.listJobs(app, false)
}

func (c *fakeController) ActiveJobs(_ context.Context, app string) ([]*controller.Job, error) {
	return c.listJobs(app, true)
}

func (c *fakeController) BuildEnv(context.Context) (*controller.BuildEnv, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buildEnvReads++
	if c.down != nil {
		return nil, c.down
	}
	return clone(&c.buildEnv), nil
}

// PatchBuildEnv changes the settings as the store does, without its
// validation.
func (c *fakeController) PatchBuildEnv(_ context.Context, p controller.BuildEnvPatch) (*controller.BuildEnv, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	be := &c.buildEnv
	if p.Env != nil {
		if be.Env == nil {
			be.Env = map[string]string{}
		}
		for _, k := range p.Env.Unset {
			delete(be.Env, k)
		}
		maps.Copy(be.Env, p.Env.Set)
	}
	if p.CACerts != nil {
		be.CACerts = *p.CACerts
	}
	be.UpdatedAt = time.Now()
	c.emitLocked("", controller.ObjectTypeBuildEnv, controller.BuildEnvObjectID, controller.OpUpdate, be)
	return clone(be), nil
}

func (c *fakeController) buildEnvReadCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buildEnvReads
}

// StreamEvents streams the changes after now that match filter (Since is
// not supported: the scheduler never resumes) until ctx ends.
func (c *fakeController) StreamEvents(ctx context.Context, filter controller.EventFilter) (<-chan *controller.Event, error) {
	sub := &eventSub{filter: filter, wake: make(chan struct{}, 1)}
	c.mu.Lock()
	c.subs[sub] = true
	c.mu.Unlock()
	out := make(chan *controller.Event)
	go func() {
		defer close(out)
		defer func() {
			c.mu.Lock()
			delete(c.subs, sub)
			c.mu.Unlock()
		}()
		for {
			for _, e := range sub.take() {
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
			select {
			case <-sub.wake:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// eventSub is one event stream: an unbounded queue, so that emitting never
// blocks on a slow reader and no event is lost.
type eventSub struct {
	filter controller.EventFilter
	wake   chan struct{}
	mu     sync.Mutex
	queue  []*controller.Event
}

func (s *eventSub) wants(e *controller.Event) bool {
	return (s.filter.AppID == "" || s.filter.AppID == e.AppID) &&
		(len(s.filter.ObjectTypes) == 0 || slices.Contains(s.filter.ObjectTypes, e.ObjectType))
}

func (s *eventSub) push(e *controller.Event) {
	s.mu.Lock()
	s.queue = append(s.queue, e)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *eventSub) take() []*controller.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queue
	s.queue = nil
	return q
}
