package server

import (
	"net/http"

	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/metrics"
)

// routes registers the whole controller API. Every endpoint but /ping needs
// a key as the basic-auth password: the controller key (a system request)
// or an API key's secret (a person's request; see auth.go). A person's
// request may not change a system app: the endpoints registered with
// handleChange, and POST /apps, POST /releases and provisioning, refuse it
// with 403 forbidden (see system.go). `:id` of an app accepts its id or its
// name. Lists are paginated: ?limit= (1–1000, default 100) and
// ?cursor=; a `Link: <…>; rel="next"` header points at the next page while
// there is one. Creating answers 201, everything else 200.
//
// GET /metrics (pkg/metrics) serves the controller's metrics to the
// controller key only: a person's API key may not read them. Every API
// request is counted by route pattern (flynn_controller_http_*); one the
// authentication refuses, or no route matches, counts as
// metrics.UnmatchedRoute. /ping and the scrapes themselves are not counted.
func (s *Server) routes() http.Handler {
	r := s.requests.Router()
	r.HandleMethodNotAllowed = true
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		httpjson.WriteError(w, httpjson.NotFound("no such endpoint"))
	})
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		httpjson.WriteError(w, httpjson.Errorf(httpjson.CodeMethodNotAllowed, "method not allowed"))
	})
	r.PanicHandler = func(w http.ResponseWriter, req *http.Request, v any) {
		s.logger.Error("handler panicked", "method", req.Method, "path", req.URL.Path, "panic", v)
		httpjson.WriteError(w, httpjson.Errorf(httpjson.CodeUnknown, "internal error"))
	}

	// The controller's build and settings (controller.Status). It needs a
	// key like everything but /ping: a version tells an attacker which
	// holes to try.
	r.GET("/status", s.handle(s.status))

	// Apps. POST gives an app that is not a system app an HTTP route to
	// its web processes when the controller has a default route domain
	// ("<app>.<domain>" to "<app>-web", made with the app: see
	// defaultroute.go); ?default_route=false makes none. A name whose
	// domain has a route already is refused with object_exists on
	// "domain".
	r.GET("/apps", s.handle(s.listApps))
	r.POST("/apps", s.handle(s.createApp))
	r.GET("/apps/:id", s.handle(s.getApp))
	r.POST("/apps/:id", s.handleChange(s.updateApp)) // body: controller.AppUpdate
	r.DELETE("/apps/:id", s.handleChange(s.deleteApp))

	// An app's current release. Setting it records a deployment from the
	// old release (pending for the scheduler, or complete at once when it
	// has no processes to run); PUT answers the app, POST …/deploy the
	// deployment. Both take {"id": release_id}. PATCH
	// (controller.ReleasePatch) makes a new release from the current one,
	// with env variables set or unset and the artifact, process types or
	// meta replaced, and deploys it, answering controller.PatchedRelease:
	// it is how `flynn env` and a push change an app without undoing a
	// change made meanwhile.
	r.GET("/apps/:id/release", s.handle(s.getAppRelease))
	r.PUT("/apps/:id/release", s.handleChange(s.setAppRelease))
	r.PATCH("/apps/:id/release", s.handleChange(s.patchAppRelease))
	r.POST("/apps/:id/deploy", s.handleChange(s.deploy))

	// Deployments; the scheduler reports progress with PUT
	// (controller.DeploymentUpdate: running, then complete or failed).
	r.GET("/apps/:id/deployments", s.handle(s.listDeployments))
	r.GET("/apps/:id/deployments/:deployment_id", s.handle(s.getDeployment))
	r.PUT("/apps/:id/deployments/:deployment_id", s.handleChange(s.updateDeployment))

	// Releases (immutable; numbered per app).
	r.GET("/apps/:id/releases", s.handle(s.listAppReleases))
	r.POST("/apps/:id/releases", s.handleChange(s.createAppRelease))
	r.GET("/releases", s.handle(s.listReleases))
	r.POST("/releases", s.handle(s.createRelease)) // body names the app in "app"
	r.GET("/releases/:id", s.handle(s.getRelease))

	// Artifacts.
	r.GET("/artifacts", s.handle(s.listArtifacts))
	r.POST("/artifacts", s.handle(s.createArtifact))
	r.GET("/artifacts/:id", s.handle(s.getArtifact))
	r.POST("/apps/:id/images", s.handleChange(s.uploadImage))      // body: `docker save` (application/x-tar); answers the docker-archive artifact (images.go)
	r.POST("/apps/:id/images/build", s.handleChange(s.buildImage)) // body: a context tar with a Dockerfile; answers controller.ImageBuildEvent NDJSON (imagebuild.go)

	// Formations: process counts per app and release. GET /formations lists
	// every app's, for the scheduler.
	r.GET("/formations", s.handle(s.listAllFormations))
	r.GET("/apps/:id/formations", s.handle(s.listFormations))
	r.GET("/apps/:id/formations/:release_id", s.handle(s.getFormation))
	r.PUT("/apps/:id/formations/:release_id", s.handleChange(s.putFormation))
	r.DELETE("/apps/:id/formations/:release_id", s.handleChange(s.deleteFormation))

	// Jobs. The scheduler reports job states with PUT (an upsert). POST runs
	// a one-off job (controller.NewJob); with `Upgrade: flynn-attach/0` the
	// connection then carries the job's attach stream. DELETE stops a job on
	// its host (204); the scheduler replaces one its formation still wants.
	// GET takes ?active=true (jobs that have not ended) and ?stats=true
	// (each running job's CPU and memory from its host, host.JobStats;
	// none for a host that does not answer within a few seconds).
	r.GET("/apps/:id/jobs", s.handle(s.listJobs))
	r.POST("/apps/:id/jobs", s.handleChange(s.runJob))
	r.GET("/apps/:id/jobs/:job_id", s.handle(s.getJob))
	r.PUT("/apps/:id/jobs/:job_id", s.handleChange(s.putJob))
	r.DELETE("/apps/:id/jobs/:job_id", s.handleChange(s.stopJob))
	// A job's log from its host: JSON lines (host.LogLine); ?follow=true
	// keeps it open until the job ends, ?tail=N starts with the last N lines.
	r.GET("/apps/:id/jobs/:job_id/log", s.handle(s.jobLog))
	// An app's log, every job's lines and the router's, from the log
	// aggregator (logaggregator.Line): newline-delimited JSON, or SSE with
	// Accept: text/event-stream; ?lines=N&follow=true&process_type=&job_id=&since=.
	r.GET("/apps/:id/log", s.handle(s.appLog))
	// What the routers have counted of the app's HTTP requests
	// (controller.AppMetrics): totals since each router started, by
	// status class and in a duration histogram, to turn into rates.
	r.GET("/apps/:id/metrics", s.handle(s.appMetrics))

	// Routes. GET /routes lists every app's, for the router. A TCP route
	// of an app that is not a system app must use a port from 3000 to 3999;
	// without one it gets a free one there. PATCH (controller.RouteUpdate)
	// changes a route's settings and answers the route.
	r.GET("/routes", s.handle(s.listAllRoutes))
	r.GET("/apps/:id/routes", s.handle(s.listRoutes))
	r.POST("/apps/:id/routes", s.handleChange(s.createRoute))
	r.GET("/apps/:id/routes/:route_id", s.handle(s.getRoute))
	r.PATCH("/apps/:id/routes/:route_id", s.handleChange(s.updateRoute))
	r.DELETE("/apps/:id/routes/:route_id", s.handleChange(s.deleteRoute))

	// Log drains: where the log aggregator sends an app's lines (see
	// controller.LogDrain). POST takes controller.NewLogDrain; a URL no
	// drain can send to is refused with validation_error on "url". GET
	// /drains lists every app's, for the aggregator (the system only).
	r.GET("/drains", s.handle(s.listAllLogDrains))
	r.GET("/apps/:id/drains", s.handle(s.listLogDrains))
	r.POST("/apps/:id/drains", s.handleChange(s.createLogDrain))
	r.DELETE("/apps/:id/drains/:drain_id", s.handleChange(s.deleteLogDrain))

	// People's API keys; :id is the key's id or name. POST takes {"name"}
	// and answers the key with its secret, which is never shown again.
	// DELETE revokes; a person's request may not revoke the last key.
	r.GET("/api-keys", s.handle(s.listAPIKeys))
	r.POST("/api-keys", s.handle(s.createAPIKey))
	r.GET("/api-keys/:id", s.handle(s.getAPIKey))
	r.DELETE("/api-keys/:id", s.handle(s.revokeAPIKey))

	// SSH keys; :id is the key's id or fingerprint.
	r.GET("/keys", s.handle(s.listKeys))
	r.POST("/keys", s.handle(s.createKey))
	r.GET("/keys/:id", s.handle(s.getKey))
	r.DELETE("/keys/:id", s.handle(s.deleteKey))

	// Providers and resources; :id of a provider accepts its id or its
	// name, and an unknown one answers not_found naming those there are.
	// Provisioning POSTs the request's config to the provider's URL, which
	// answers {"id", "env"}; each app named gets a new release with that
	// env merged in, deployed. DELETE of a resource has its provider
	// deprovision it (DELETE <url>/<external id>), then deletes it and
	// gives each app that had it a new release without its env, answering
	// the resource as it was; a person's request may not remove a system
	// app's resource.
	r.GET("/providers", s.handle(s.listProviders))
	r.POST("/providers", s.handle(s.createProvider))
	r.GET("/providers/:id", s.handle(s.getProvider))
	r.GET("/providers/:id/resources", s.handle(s.listProviderResources))
	r.POST("/providers/:id/resources", s.handle(s.provisionResource))
	r.GET("/providers/:id/resources/:resource_id", s.handle(s.getResource))
	r.DELETE("/providers/:id/resources/:resource_id", s.handle(s.removeResource))
	r.GET("/apps/:id/resources", s.handle(s.listAppResources))

	// The cluster's build settings (controller.BuildEnv), which every build
	// and job of an app that is not a system app gets under its own env.
	// GET: any key (every app job gets them anyway). PATCH
	// (controller.BuildEnvPatch) answers the new settings; a system
	// request only, a person's gets 403 forbidden. Running jobs keep what
	// they started with: a restart or a deploy picks up a change.
	r.GET("/cluster/build-env", s.handle(s.getBuildEnv))
	r.PATCH("/cluster/build-env", s.handle(s.patchBuildEnv))

	// Hosts: the cluster's nodes as discoverd and each flynn-host report
	// them (controller.Host); a host that does not answer in a few
	// seconds is listed as unreachable. ?stats=true adds each reachable
	// host's summed CPU and memory of its running jobs
	// (controller.HostStats), read within the same few seconds; a host
	// whose stats do not come is listed without.
	r.GET("/hosts", s.handle(s.listHosts))

	// Events: Server-Sent Events of every change. ?app_id=, ?object_types=a,b
	// filter; Last-Event-Id or ?since=ID resumes after that event (since=0:
	// the whole history); without either the stream starts with the next
	// change.
	r.GET("/events", s.handle(s.streamEvents))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.Handle("GET "+metrics.Path, metrics.Handler(s.registry, s.opts.AuthKey))
	mux.Handle("/", s.requests.Wrap(s.authenticate(r)))
	return mux
}
