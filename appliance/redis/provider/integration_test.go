package provider

import (
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/openflynn/flynn/appliance/redis"
	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/controller/controllertest"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// TestWithController runs the provider against a real controller, the
// way a cluster does: the controller calls it for `flynn resource add
// redis`, and it makes the Redis app through the controller's API with the
// controller key. The controller's own checks (the release and route
// schemas, system apps, the TCP port range) so judge what it makes.
func TestWithController(t *testing.T) {
	const controllerKey = "controller-key"
	ctrl := controllertest.New(t, pg.Server(t).NewDatabase(t), controllertest.Options{Key: controllerKey})
	c := ctrl.Client()
	ctx := t.Context()

	// What bootstrap leaves: the app "redis" holding the server image,
	// with nothing running.
	redisApp := &controller.App{Name: "redis", System: true}
	if err := c.CreateApp(ctx, redisApp); err != nil {
		t.Fatal(err)
	}
	art := &controller.Artifact{Type: controller.ArtifactTypeDocker, URI: "flynn/redis:test"}
	if err := c.CreateArtifact(ctx, art); err != nil {
		t.Fatal(err)
	}
	srcRel := &controller.Release{AppID: redisApp.ID, ArtifactID: art.ID, Processes: map[string]controller.ProcessType{"server": {}}}
	if err := c.CreateRelease(ctx, srcRel); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetAppRelease(ctx, redisApp.ID, srcRel.ID); err != nil {
		t.Fatal(err)
	}

	api := httptest.NewServer(Handler(New(c, Options{Host: testHost}), testKey, nil))
	t.Cleanup(api.Close)
	providerURL := strings.Replace(api.URL, "http://", "http://:"+testKey+"@", 1) + Path
	if err := c.CreateProvider(ctx, &controller.Provider{Name: "redis", URL: providerURL}); err != nil {
		t.Fatal(err)
	}
	web := &controller.App{Name: "web"}
	if err := c.CreateApp(ctx, web); err != nil {
		t.Fatal(err)
	}

	res, err := c.ProvisionResource(ctx, "redis", &controller.ResourceRequest{Config: []byte(`{}`), Apps: []string{"web"}})
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	name := redis.AppName(res.ExternalID)
	app, err := c.App(ctx, name)
	if err != nil {
		t.Fatalf("the Redis app: %v", err)
	}
	if !app.System || app.Meta[redis.MetaResource] != redis.ResourceKind {
		t.Errorf("app %+v, want a system app marked as a redis resource", app)
	}
	rel, err := c.AppRelease(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	want := Release(res.ExternalID, art.ID, res.Env[redis.EnvPassword]).Processes
	if rel.ArtifactID != art.ID || !reflect.DeepEqual(rel.Processes, want) || rel.Env[redis.EnvPassword] == "" {
		t.Errorf("release %+v, want the redis artifact, the password and processes %+v", rel, want)
	}
	form, err := c.Formation(ctx, name, rel.ID)
	if err != nil || !reflect.DeepEqual(form.Processes, map[string]int{"server": 1}) {
		t.Errorf("formation %+v (%v), want server=1", form, err)
	}
	routes, err := c.AppRoutes(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) != 1 || routes[0].Type != controller.RouteTypeTCP || routes[0].Service != name ||
		routes[0].Port < controller.TCPRoutePortMin || routes[0].Port > controller.TCPRoutePortMax {
		t.Fatalf("routes %+v, want one TCP route to %s in the apps' port range", routes, name)
	}
	port := strconv.Itoa(routes[0].Port)
	if got, want := res.Env[redis.EnvURL], "redis://:"+res.Env[redis.EnvPassword]+"@"+testHost+":"+port; got != want {
		t.Errorf("REDIS_URL %q, want %q", got, want)
	}

	// A person (an API key, not the controller key) may not touch it.
	key, err := c.CreateAPIKey(ctx, "someone")
	if err != nil {
		t.Fatal(err)
	}
	person := client.NewWithHTTPClient(ctrl.URL(), key.Secret, ctrl.HTTP.Client())
	if _, err := person.DeleteApp(ctx, name); !httpjson.IsCode(err, httpjson.CodeForbidden) {
		t.Errorf("a person's DeleteApp(%s) = %v, want forbidden", name, err)
	}

	// Deleting the only app using the resource deprovisions it.
	if _, err := c.DeleteApp(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.App(ctx, name); !httpjson.IsNotFound(err) {
		t.Errorf("App(%s) after its resource went = %v, want not found", name, err)
	}
}
