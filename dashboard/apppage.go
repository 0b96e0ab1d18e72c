package dashboard

import (
	"context"
	"fmt"
	"maps"
	"net"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// appView is an app's page.
type appView struct {
	App     *controller.App
	Release *controller.Release
	// WebURL is the app's first HTTP route, as a URL ("": none).
	WebURL string
	// GitRemote is the app's git remote ("": the dashboard was not told
	// where gitreceive is).
	GitRemote string
	Types     []*processView
	Releases  []*releaseView
	// Deploying is the app's deployment in flight, if any.
	Deploying *deploymentView
	Env       []envVar
	Routes    []*controller.Route
	Resources []*resourceView
	Providers []*controller.Provider
	Graphs    []graphView
}

// processView is a process type: how many jobs are wanted and the live ones.
type processView struct {
	Type  string
	Count int
	Up    int
	Jobs  []*controller.Job
}

// releaseView is one release in the history.
type releaseView struct {
	Release *controller.Release
	Current bool
	// What says what the release changed; By who made it, where known.
	What string
	By   string
	// Diff is its env against the release before.
	Diff []envChange
	// Status is its last deployment's ("complete", "failed", …; "" none)
	// and Error why that failed.
	Status, Error string
	// Deploy is what deploying it again is called: "Roll back to v3"
	// for one older than the current release, else "Deploy v5".
	Deploy string
}

type envChange struct {
	Name string
	// Op is "added", "changed" or "removed".
	Op string
}

type envVar struct{ Name, Value string }

type resourceView struct {
	Resource *controller.Resource
	Provider string
}

// deploymentView is a deployment in flight and how far it is.
type deploymentView struct {
	App        *controller.App
	Deployment *controller.Deployment
	Version    int
	// Up counts the new release's jobs that serve, Want those the
	// deployment brings up.
	Up, Want int
}

// releasesShown bounds the release history on the page.
const releasesShown = 20

func (s *Server) appPage(ctx context.Context, r *request) (*view, error) {
	app, err := r.api.App(ctx, r.ps.ByName("app"))
	if err != nil {
		return nil, err
	}
	v := &appView{App: app}
	if s.cfg.GitPort != 0 {
		v.GitRemote = gitRemote(r.Host, s.cfg.GitPort, app.Name)
	}
	var (
		releases    []*controller.Release
		deployments []*controller.Deployment
		formation   *controller.Formation
		jobs        []*controller.Job
	)
	loads := []func(ctx context.Context) error{
		func(ctx context.Context) (err error) { releases, err = r.api.AppReleases(ctx, app.ID); return },
		func(ctx context.Context) (err error) { deployments, err = r.api.Deployments(ctx, app.ID); return },
		func(ctx context.Context) (err error) { jobs, err = r.api.ActiveJobs(ctx, app.ID); return },
		func(ctx context.Context) (err error) { v.Routes, err = r.api.AppRoutes(ctx, app.ID); return },
		func(ctx context.Context) (err error) { v.Providers, err = r.api.Providers(ctx); return },
		func(ctx context.Context) error {
			res, err := r.api.AppResources(ctx, app.ID)
			for _, x := range res {
				v.Resources = append(v.Resources, &resourceView{Resource: x})
			}
			return err
		},
		func(ctx context.Context) error {
			if app.ReleaseID == "" {
				return nil
			}
			f, err := r.api.Formation(ctx, app.ID, app.ReleaseID)
			if httpjson.IsNotFound(err) {
				return nil
			}
			formation = f
			return err
		},
	}
	if err := each(ctx, len(loads), func(ctx context.Context, i int) error { return loads[i](ctx) }); err != nil {
		return nil, err
	}
	for _, rt := range v.Routes {
		if rt.Type == "http" && v.WebURL == "" {
			v.WebURL = "https://" + rt.Domain + rt.Path
		}
	}
	for _, res := range v.Resources {
		res.Provider = res.Resource.ProviderID
		for _, p := range v.Providers {
			if p.ID == res.Resource.ProviderID {
				res.Provider = p.Name
			}
		}
	}
	sort.Slice(releases, func(i, j int) bool { return releases[i].Version > releases[j].Version })
	for _, rel := range releases {
		if rel.ID == app.ReleaseID {
			v.Release = rel
		}
	}
	if v.Release != nil {
		for _, name := range slices.Sorted(maps.Keys(v.Release.Env)) {
			v.Env = append(v.Env, envVar{name, v.Release.Env[name]})
		}
	}
	v.Releases = releaseHistory(app, releases, deployments)
	v.Types = processes(v.Release, formation, jobs)
	v.Deploying = inFlight(app, deployments, releases, jobs)
	v.Graphs = s.appGraphs(app.ID)
	return &view{Page: "app", Title: app.Name, LiveApp: app.ID, Data: v}, nil
}

// processes are the current release's process types with their counts and
// the app's live jobs of each (those of older releases too, while a
// deployment replaces them).
func processes(rel *controller.Release, f *controller.Formation, jobs []*controller.Job) []*processView {
	byType := map[string]*processView{}
	get := func(t string) *processView {
		if byType[t] == nil {
			byType[t] = &processView{Type: t}
		}
		return byType[t]
	}
	if rel != nil {
		for t := range rel.Processes {
			get(t)
		}
	}
	if f != nil {
		for t, n := range f.Processes {
			get(t).Count = n
		}
	}
	for _, j := range jobs {
		if j.Type == "" {
			continue // one-off
		}
		p := get(j.Type)
		p.Jobs = append(p.Jobs, j)
		if jobUp(j) && rel != nil && j.ReleaseID == rel.ID {
			p.Up++
		}
	}
	out := slices.Collect(maps.Values(byType))
	for _, p := range out {
		sort.Slice(p.Jobs, func(i, j int) bool { return p.Jobs[i].CreatedAt.Before(p.Jobs[j].CreatedAt) })
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out
}

// releaseHistory describes the newest releases (releases newest first).
func releaseHistory(app *controller.App, releases []*controller.Release, deployments []*controller.Deployment) []*releaseView {
	// Deployments come newest first: the first seen of a release is its last.
	last := map[string]*controller.Deployment{}
	for _, d := range deployments {
		if prev := last[d.NewReleaseID]; prev == nil || d.CreatedAt.After(prev.CreatedAt) {
			last[d.NewReleaseID] = d
		}
	}
	var current *controller.Release
	for _, rel := range releases {
		if rel.ID == app.ReleaseID {
			current = rel
		}
	}
	var out []*releaseView
	for i, rel := range releases {
		if i == releasesShown {
			break
		}
		var prev *controller.Release
		if i+1 < len(releases) {
			prev = releases[i+1]
		}
		rv := &releaseView{Release: rel, Current: rel.ID == app.ReleaseID, What: describe(rel, prev), By: rel.Meta[controller.ReleaseMetaCreatedBy], Diff: envDiff(prev, rel)}
		if d := last[rel.ID]; d != nil {
			rv.Status, rv.Error = d.Status, d.Error
		}
		rv.Deploy = fmt.Sprintf("Deploy v%d", rel.Version)
		if current != nil && rel.Version < current.Version {
			rv.Deploy = fmt.Sprintf("Roll back to v%d", rel.Version)
		}
		out = append(out, rv)
	}
	return out
}

// slugURLEnv is the env var gitreceive sets to each push's slug.
const slugURLEnv = "SLUG_URL"

// describe says in a few words what rel changed from prev.
func describe(rel, prev *controller.Release) string {
	var parts []string
	switch {
	case rel.Meta["git"] == "true":
		commit := rel.Meta["commit"]
		if len(commit) > 7 {
			commit = commit[:7]
		}
		parts = append(parts, "git push "+commit)
	case rel.Meta["docker_image"] != "":
		parts = append(parts, "image "+rel.Meta["docker_image"])
	case prev == nil:
		parts = append(parts, "first release")
	case rel.ArtifactID != prev.ArtifactID:
		parts = append(parts, "new artifact")
	}
	var names []string
	for _, c := range envDiff(prev, rel) {
		if c.Name == slugURLEnv && rel.Meta["git"] == "true" {
			continue // every push's: "git push" says it
		}
		names = append(names, map[string]string{"added": "+", "changed": "~", "removed": "−"}[c.Op]+c.Name)
	}
	if len(names) > 0 {
		parts = append(parts, "env "+strings.Join(names, " "))
	}
	if prev != nil && !reflect.DeepEqual(rel.Processes, prev.Processes) && rel.ArtifactID == prev.ArtifactID {
		parts = append(parts, "process types changed")
	}
	if len(parts) == 0 {
		return "same as v" + fmt.Sprint(prev.Version)
	}
	return strings.Join(parts, "; ")
}

// envDiff is which env vars rel added, changed or removed since prev
// (names only: a diff shows no values); the first release added all it
// has.
func envDiff(prev, rel *controller.Release) []envChange {
	if prev == nil {
		prev = &controller.Release{}
	}
	var out []envChange
	for _, name := range slices.Sorted(maps.Keys(rel.Env)) {
		old, ok := prev.Env[name]
		switch {
		case !ok:
			out = append(out, envChange{name, "added"})
		case old != rel.Env[name]:
			out = append(out, envChange{name, "changed"})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(prev.Env)) {
		if _, ok := rel.Env[name]; !ok {
			out = append(out, envChange{name, "removed"})
		}
	}
	return out
}

// inFlight is the app's deployment that is pending or running, with its
// progress: the new release's jobs up against those it brings up.
func inFlight(app *controller.App, deployments []*controller.Deployment, releases []*controller.Release, jobs []*controller.Job) *deploymentView {
	for _, d := range deployments {
		if d.Status != controller.DeploymentPending && d.Status != controller.DeploymentRunning {
			continue
		}
		dv := &deploymentView{App: app, Deployment: d}
		for _, rel := range releases {
			if rel.ID == d.NewReleaseID {
				dv.Version = rel.Version
			}
		}
		for _, n := range d.Processes {
			dv.Want += n
		}
		for _, j := range jobs {
			if j.ReleaseID == d.NewReleaseID && jobUp(j) {
				dv.Up++
			}
		}
		return dv
	}
	return nil
}

// gitRemote is the git remote of app on the routers reached at host (a
// request's Host, with or without a port).
func gitRemote(host string, port int, app string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return "ssh://git@" + net.JoinHostPort(host, strconv.Itoa(port)) + "/" + app + ".git"
}

// age says how long ago t was, roughly: "just now", "5m ago", "3d ago".
func age(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}
