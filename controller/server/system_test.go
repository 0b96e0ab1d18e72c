package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// systemApp creates a system app with the controller key.
func (h *harness) systemApp(t testing.TB, name string) *controller.App {
	t.Helper()
	app := &controller.App{Name: name, System: true}
	if err := h.client.CreateApp(t.Context(), app); err != nil {
		t.Fatalf("create system app %q: %v", name, err)
	}
	if !app.System {
		t.Fatalf("app %s created without its system flag", name)
	}
	return app
}

// TestSystemApps: a person may read a system app but every change to it
// is refused with 403 and a message naming --system; the controller key
// may do everything.
func TestSystemApps(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	person, personKey := h.person(t, "alice")
	sys := h.systemApp(t, "router")
	rel := h.release(t, sys, nil)
	if _, err := h.client.SetAppRelease(ctx, sys.ID, rel.ID); err != nil {
		t.Fatal(err)
	}
	route := &controller.Route{Type: controller.RouteTypeHTTP, Service: "router-web", Domain: "router.example.com"}
	if err := h.client.CreateRoute(ctx, sys.ID, route); err != nil {
		t.Fatal(err)
	}
	job := &controller.Job{ID: "host1-sys", AppID: sys.ID, ReleaseID: rel.ID, Type: "web", State: controller.JobStateUp, HostID: "host1"}
	if err := h.client.PutJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	deployments, err := h.client.Deployments(ctx, sys.ID)
	if err != nil || len(deployments) != 1 {
		t.Fatalf("Deployments = %v, %v", deployments, err)
	}
	prov, _ := fakeProvider(t, http.StatusOK)
	if err := h.client.CreateProvider(ctx, &controller.Provider{Name: "pg", URL: prov.URL}); err != nil {
		t.Fatal(err)
	}

	// Reads are a person's too.
	if got, err := person.App(ctx, "router"); err != nil || !got.System {
		t.Fatalf("person reads the system app: %+v, %v", got, err)
	}
	if _, err := person.AppReleases(ctx, sys.ID); err != nil {
		t.Fatalf("person lists the system app's releases: %v", err)
	}

	strategy := controller.StrategyAllAtOnce
	changes := []struct {
		name string
		do   func() error
	}{
		{"update", func() error { return second(person.UpdateApp(ctx, sys.ID, controller.AppUpdate{Strategy: &strategy})) }},
		{"create a release", func() error {
			return person.CreateRelease(ctx, &controller.Release{AppID: sys.Name, ArtifactID: rel.ArtifactID})
		}},
		{"create a release naming the app in the body", func() error {
			return rawRequestAs(t, h, personKey.Secret, "POST", "/releases", "application/json", []byte(`{"app":"router","artifact":"`+rel.ArtifactID+`"}`), nil)
		}},
		{"set the release", func() error { return second(person.SetAppRelease(ctx, sys.ID, rel.ID)) }},
		{"deploy", func() error { return second(person.Deploy(ctx, sys.ID, rel.ID)) }},
		{"patch the release", func() error {
			return second(person.PatchRelease(ctx, sys.ID, controller.ReleasePatch{Env: &controller.EnvPatch{Set: map[string]string{"A": "1"}}}))
		}},
		{"report a deployment", func() error {
			return second(person.UpdateDeployment(ctx, sys.ID, deployments[0].ID, controller.DeploymentUpdate{Status: controller.DeploymentFailed}))
		}},
		{"scale", func() error {
			return person.PutFormation(ctx, &controller.Formation{AppID: sys.ID, ReleaseID: rel.ID, Processes: map[string]int{"web": 0}})
		}},
		{"delete a formation", func() error { return person.DeleteFormation(ctx, sys.ID, rel.ID) }},
		{"run a job", func() error { return second(person.RunJob(ctx, sys.ID, &controller.NewJob{Args: []string{"sh"}})) }},
		{"report a job", func() error {
			return person.PutJob(ctx, &controller.Job{ID: "host1-fake", AppID: sys.ID, ReleaseID: rel.ID, State: controller.JobStateUp})
		}},
		{"stop a job", func() error { return person.StopJob(ctx, sys.ID, job.ID) }},
		{"add a route", func() error {
			return person.CreateRoute(ctx, sys.ID, &controller.Route{Type: controller.RouteTypeHTTP, Service: "x", Domain: "evil.example.com"})
		}},
		{"remove a route", func() error { return person.DeleteRoute(ctx, sys.ID, route.ID) }},
		{"provision a resource", func() error {
			return second(person.ProvisionResource(ctx, "pg", &controller.ResourceRequest{Apps: []string{sys.Name}}))
		}},
		{"delete", func() error { return second(person.DeleteApp(ctx, sys.ID)) }},
	}
	for _, tt := range changes {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			wantCode(t, err, httpjson.CodeForbidden, "")
			if !strings.Contains(err.Error(), "--system") {
				t.Errorf("refusal %q does not name --system", err)
			}
		})
	}
	if len(h.runner.ran()) != 0 {
		t.Fatalf("a refused job ran: %+v", h.runner.ran())
	}
	if got, err := h.client.App(ctx, sys.ID); err != nil || got.ReleaseID != rel.ID || got.Strategy == strategy {
		t.Fatalf("after the refusals the app is %+v, %v; want it unchanged", got, err)
	}

	// The controller key may do all of it.
	rel2 := &controller.Release{AppID: sys.ID, ArtifactID: rel.ArtifactID, Processes: rel.Processes}
	if err := h.client.CreateRelease(ctx, rel2); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.Deploy(ctx, sys.ID, rel2.ID); err != nil {
		t.Fatal(err)
	}
	if err := h.client.PutFormation(ctx, &controller.Formation{AppID: sys.ID, ReleaseID: rel2.ID, Processes: map[string]int{"web": 2}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.RunJob(ctx, sys.ID, &controller.NewJob{Args: []string{"true"}}); err != nil {
		t.Fatal(err)
	}
	if err := h.client.DeleteRoute(ctx, sys.ID, route.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.DeleteApp(ctx, sys.ID); err != nil {
		t.Fatal(err)
	}
}

// TestPersonApps: a person does everything to apps that are not system
// apps, but may not make a system app.
func TestPersonApps(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	person, _ := h.person(t, "alice")
	err := person.CreateApp(ctx, &controller.App{Name: "sneaky", System: true})
	wantCode(t, err, httpjson.CodeForbidden, "")
	if !strings.Contains(err.Error(), "--system") {
		t.Errorf("refusal %q does not name --system", err)
	}
	wantCode(t, second(h.client.App(ctx, "sneaky")), httpjson.CodeNotFound, "")

	app := &controller.App{Name: "mine"}
	if err := person.CreateApp(ctx, app); err != nil || app.System {
		t.Fatalf("person creates an app: %+v, %v", app, err)
	}
	art := h.artifact(t)
	rel := &controller.Release{AppID: app.ID, ArtifactID: art.ID, Processes: map[string]controller.ProcessType{"web": {Cmd: []string{"web"}}}}
	if err := person.CreateRelease(ctx, rel); err != nil {
		t.Fatal(err)
	}
	if _, err := person.Deploy(ctx, app.ID, rel.ID); err != nil {
		t.Fatal(err)
	}
	if err := person.PutFormation(ctx, &controller.Formation{AppID: app.ID, ReleaseID: rel.ID, Processes: map[string]int{"web": 3}}); err != nil {
		t.Fatal(err)
	}
	if _, err := person.RunJob(ctx, app.ID, &controller.NewJob{Args: []string{"true"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := person.DeleteApp(ctx, app.ID); err != nil {
		t.Fatal(err)
	}
}

// TestHostNetworkOnlyForSystemApps: no key makes a release of an ordinary
// app run on the host's network.
func TestHostNetworkOnlyForSystemApps(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	app, sys := h.app(t, "plain"), h.systemApp(t, "discoverd")
	art := h.artifact(t)
	procs := map[string]controller.ProcessType{"app": {Cmd: []string{"discoverd"}, HostNetwork: true}, "web": {}}

	err := h.client.CreateRelease(ctx, &controller.Release{AppID: app.ID, ArtifactID: art.ID, Processes: procs})
	wantCode(t, err, httpjson.CodeValidation, "processes.app.host_network")
	err = rawRequest(t, h, "POST", "/releases", "application/json", []byte(`{"app":"plain","artifact":"`+art.ID+`","processes":{"x":{"host_network":true}}}`), nil)
	wantCode(t, err, httpjson.CodeValidation, "processes.x.host_network")

	rel := &controller.Release{AppID: sys.ID, ArtifactID: art.ID, Processes: procs}
	if err := h.client.CreateRelease(ctx, rel); err != nil {
		t.Fatalf("host network for a system app: %v", err)
	}
	if got, err := h.client.Release(ctx, rel.ID); err != nil || !got.Processes["app"].HostNetwork {
		t.Fatalf("release = %+v, %v; want host_network kept", got, err)
	}
}

// TestTCPRoutePorts: ordinary apps' TCP routes stay in 3000-3999 and get
// a free port there when they name none; system apps' may use any port.
func TestTCPRoutePorts(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	app, other, sys := h.app(t, "db"), h.app(t, "cache"), h.systemApp(t, "gitreceive")

	tcp := func(port int) *controller.Route {
		return &controller.Route{Type: controller.RouteTypeTCP, Service: "svc", Port: port}
	}
	first, second2, taken := tcp(0), tcp(0), tcp(3001)
	if err := h.client.CreateRoute(ctx, app.ID, taken); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*controller.Route{first, second2} {
		if err := h.client.CreateRoute(ctx, other.ID, r); err != nil {
			t.Fatal(err)
		}
	}
	if first.Port != 3000 || second2.Port != 3002 {
		t.Fatalf("picked ports %d and %d, want 3000 and 3002 (3001 is taken)", first.Port, second2.Port)
	}
	if got, err := h.client.Route(ctx, other.ID, second2.ID); err != nil || got.Port != 3002 {
		t.Fatalf("stored route = %+v, %v; want port 3002", got, err)
	}
	wantCode(t, h.client.CreateRoute(ctx, app.ID, tcp(3000)), httpjson.CodeObjectExists, "port")
	err := h.client.CreateRoute(ctx, app.ID, tcp(5432))
	wantCode(t, err, httpjson.CodeValidation, "port")
	if !strings.Contains(err.Error(), "3000 to 3999") {
		t.Errorf("refusal %q does not give the range", err)
	}

	ssh := tcp(2222)
	if err := h.client.CreateRoute(ctx, sys.ID, ssh); err != nil || ssh.Port != 2222 {
		t.Fatalf("system app's route on 2222: %+v, %v", ssh, err)
	}
	picked := tcp(0)
	if err := h.client.CreateRoute(ctx, sys.ID, picked); err != nil || picked.Port != 3003 {
		t.Fatalf("system app's route without a port: %+v, %v; want 3003", picked, err)
	}
}

// TestSystemAppEnvHidden: a system app's env holds the platform's secrets
// (the controller key among them), so a person reads its releases with
// every env value hidden, in every place releases are read; the system
// reads them whole, and a person's own apps are not touched.
func TestSystemAppEnvHidden(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	person, _ := h.person(t, "alice")
	sys, own := h.systemApp(t, "controller"), h.app(t, "mine")
	events, err := person.StreamEvents(ctx, controller.EventFilter{ObjectTypes: []string{controller.ObjectTypeRelease}})
	if err != nil {
		t.Fatal(err)
	}
	art := h.artifact(t)
	secret := &controller.Release{AppID: sys.ID, ArtifactID: art.ID, Env: map[string]string{"FLYNN_CONTROLLER_KEY": "s3cret"},
		Processes: map[string]controller.ProcessType{"api": {Env: map[string]string{"PGPASSWORD": "hunter2"}}}}
	if err := h.client.CreateRelease(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.SetAppRelease(ctx, sys.ID, secret.ID); err != nil {
		t.Fatal(err)
	}
	mine := &controller.Release{AppID: own.ID, ArtifactID: art.ID, Env: map[string]string{"MINE": "visible"}}
	if err := person.CreateRelease(ctx, mine); err != nil {
		t.Fatal(err)
	}

	hidden := func(what string, rel *controller.Release, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if rel.Env["FLYNN_CONTROLLER_KEY"] != hiddenValue || rel.Processes["api"].Env["PGPASSWORD"] != hiddenValue {
			t.Errorf("%s: a person reads env %v and api's %v, want every value hidden", what, rel.Env, rel.Processes["api"].Env)
		}
	}
	rel, err := person.Release(ctx, secret.ID)
	hidden("GET /releases/:id", rel, err)
	rel, err = person.AppRelease(ctx, sys.Name)
	hidden("GET /apps/:id/release", rel, err)
	if list, err := person.AppReleases(ctx, sys.ID); err != nil || len(list) != 1 {
		t.Fatalf("AppReleases = %v, %v", list, err)
	} else {
		hidden("GET /apps/:id/releases", list[0], nil)
	}
	all, err := person.Releases(ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("Releases = %v, %v", all, err)
	}
	for _, rel := range all {
		if rel.AppID == sys.ID {
			hidden("GET /releases", rel, nil)
		} else if rel.Env["MINE"] != "visible" {
			t.Errorf("a person's own release reads %v", rel.Env)
		}
	}
	for _, want := range []*controller.Release{secret, mine} {
		e := nextEvent(t, events)
		var rel controller.Release
		if err := json.Unmarshal(e.Data, &rel); err != nil || rel.ID != want.ID {
			t.Fatalf("event %s: release %+v, %v; want %s", e.ObjectType, rel, err, want.ID)
		}
		// The log keeps no env values of any app (see controller.Event);
		// a person's own app's release event names its env as stored.
		if want == secret {
			hidden("release event", &rel, nil)
		} else if rel.Env["MINE"] != controller.RedactedValue {
			t.Errorf("the event of a person's own release reads %v", rel.Env)
		}
	}

	if got, err := h.client.AppRelease(ctx, sys.ID); err != nil || got.Env["FLYNN_CONTROLLER_KEY"] != "s3cret" || got.Processes["api"].Env["PGPASSWORD"] != "hunter2" {
		t.Fatalf("the system reads %+v, %v; want the env whole", got, err)
	}
}
