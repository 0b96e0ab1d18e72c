// Package bootstrap brings a Flynn cluster up from a bare flynn-host by
// running a JSON manifest of steps (`flynn-host bootstrap MANIFEST`).
//
//	run-app discoverd ─► run-app postgres ─► gen-random ─► wait ─► run-app controller ─► wait
//	  ─► add-app (the running jobs become apps of the controller) ─► scale-app + run-app scheduler
//	  ─► deploy-app blobstore, router, gitreceive (the scheduler starts them) ─► certificates, keys
//	  ─► wait router ─► add-route ─► add-api-key admin ─► join (the line that makes another machine a node)
//	  ─► cluster-add (the `flynn cluster add …` line)
//
// The apps bootstrap records are system apps, which only the controller key
// (the cluster key) may change; the cluster-add line carries the "admin"
// API key instead, a person's key.
//
// Components find each other by discoverd service name, never by a fixed
// port: every job but discoverd and the router's public listeners gets its
// ports from its host, URLs between components name services
// ("http://controller.discoverd", "leader.postgres.discoverd"), and the
// steps after the controller's start reach it the same way, through
// Config.HTTPClient.
//
// Each action is one file. Steps refer to earlier steps' outputs and to the
// run's values with "{{name}}" in any string: {{domain}}, {{cluster_key}},
// {{external_ip}}, {{host_id}}, {{image.KEY}} (a ref from the images
// manifest), {{stacks.slugbuilder}} and {{stacks.slugrunner}} (the other
// stacks' images in the manifest, imageValues), {{STEP}} (a gen-random
// value), {{STEP.pin}}, {{STEP.cert}}, {{STEP.key}} (gen-tls-cert),
// {{STEP.private_key}}, {{STEP.public_key}} (gen-ssh-key), {{STEP.app_id}}
// and {{STEP.release_id}} (app steps), {{STEP}} (add-api-key: the new
// key's secret).
//
// # How the scheduler adopts what bootstrap started
//
// The scheduler recognises an app's jobs by their metadata (app id, release
// id, process type; see controller/jobmeta.go). run-app picks the app and
// release ids itself and starts its jobs with exactly the job the scheduler
// would build (hostjob.ForProcess); add-app and scale-app later create the
// app, release and formation under those same ids. The scheduler's first
// round then counts the running jobs as the formation's: it neither starts
// a second copy nor stops them, and restarts them if they die.
//
// Data that must outlive a job (discoverd's etcd, postgres's cluster) sits
// in named host volumes that the release's process types name, so a job
// the scheduler starts again after a crash mounts the same data.
package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/discoverd"
	discoverdclient "github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/stacks"
)

// Host is the part of the host API bootstrap uses; *host/client.Client
// implements it.
type Host interface {
	Status(ctx context.Context) (*host.HostStatus, error)
	ListJobs(ctx context.Context) ([]*host.ActiveJob, error)
	AddJob(ctx context.Context, job *host.Job) (*host.ActiveJob, error)
}

// JobStopper is what a forced run needs on top of Host to stop the jobs a
// previous bootstrap left; *host/client.Client implements it.
type JobStopper interface {
	StopJob(ctx context.Context, id string) (*host.ActiveJob, error)
}

// Discoverd is the part of the discoverd client bootstrap uses.
type Discoverd interface {
	Instances(ctx context.Context, service string) ([]*discoverd.Instance, error)
}

// Controller is the part of the controller API the steps drive;
// *controller/client.Client implements it. It is wider than most consumer
// interfaces because recording an app is several calls.
type Controller interface {
	CreateApp(ctx context.Context, app *controller.App) error
	CreateArtifact(ctx context.Context, a *controller.Artifact) error
	CreateRelease(ctx context.Context, rel *controller.Release) error
	SetAppRelease(ctx context.Context, app, releaseID string) (*controller.App, error)
	PutFormation(ctx context.Context, f *controller.Formation) error
	CreateRoute(ctx context.Context, app string, route *controller.Route) error
	CreateAPIKey(ctx context.Context, name string) (*controller.APIKey, error)
	CreateProvider(ctx context.Context, p *controller.Provider) error
}

// Config configures a run.
type Config struct {
	// Host is the local host's API (required).
	Host Host
	// Discoverd is the discoverd client (required).
	Discoverd Discoverd
	// NewController returns a controller client for a base URL and key
	// (required). The URL names the manifest's controller service
	// ("http://controller.discoverd"), so the client must dial discoverd
	// names, as one over discoverd/client.HTTPClient does.
	NewController func(url, key string) Controller
	// HTTPClient makes the wait steps' requests, to
	// "http://<service>.discoverd<path>" (required): it must dial
	// discoverd names, as discoverd/client.HTTPClient does.
	HTTPClient *http.Client
	// Images maps image keys to references ({{image.KEY}}; run-app,
	// scale-app and deploy-app's "image").
	Images map[string]string
	// Domain is the cluster's domain ({{domain}}). Default "flynn.test".
	Domain string
	// ClusterKey is the key of the host and discoverd APIs ({{cluster_key}}).
	ClusterKey string
	// Force runs the manifest on a host that was bootstrapped already,
	// after stopping the jobs of the previous cluster and removing its
	// volumes with RemoveVolume.
	Force bool
	// RemoveVolume deletes a named host volume (forced runs only).
	RemoveVolume func(name string) error
	// Out receives the step lines. Default io.Discard.
	Out io.Writer
	// WaitTimeout bounds each wait step. Default 2 minutes.
	WaitTimeout time.Duration
	// PollInterval is how often waits look again. Default 100 ms.
	PollInterval time.Duration
	// Now is the clock of the step lines. Default time.Now.
	Now func() time.Time
}

// DefaultDomain is the cluster domain when none is given.
const DefaultDomain = "flynn.test"

// Result is what a successful run produced.
type Result struct {
	// ClusterAdd is the `flynn cluster add …` command line, when the
	// manifest has a cluster-add step.
	ClusterAdd string
	// Join is the command line that makes another machine a node of the
	// cluster, when the manifest has a join step. It holds the cluster
	// key: keep it where the key may be.
	Join string
	// Duration is the run's wall time.
	Duration time.Duration
}

// ErrBootstrapped is returned (wrapped) when the host runs a cluster
// already and Config.Force is not set.
var ErrBootstrapped = errors.New("this host is bootstrapped already (use --force to tear the cluster down and start again)")

// StepError is a failed step.
type StepError struct {
	ID, Action string
	Err        error
}

func (e *StepError) Error() string { return fmt.Sprintf("step %s (%s): %v", e.ID, e.Action, e.Err) }

func (e *StepError) Unwrap() error { return e.Err }

// run is the state of one run, shared by the steps.
type run struct {
	cfg    Config
	m      *Manifest
	log    *slog.Logger
	status *host.HostStatus
	values map[string]string
	// apps are the apps app steps described, by step id.
	apps       map[string]*appState
	ctrl       Controller
	clusterAdd string
	join       string
}

// appState is an app as bootstrap knows it: its spec with ids assigned.
type appState struct {
	spec     AppSpec
	appID    string
	release  controller.Release
	recorded bool // created in the controller
	jobs     []string
}

// Run runs the manifest's steps in order, printing one line per step to
// cfg.Out. It stops at the first failing step with a *StepError.
func Run(ctx context.Context, cfg Config, m *Manifest, logger *slog.Logger) (*Result, error) {
	start := time.Now()
	if cfg.Domain == "" {
		cfg.Domain = DefaultDomain
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = 2 * time.Minute
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 100 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Host == nil || cfg.Discoverd == nil || cfg.NewController == nil || cfg.HTTPClient == nil {
		return nil, errors.New("bootstrap: Host, Discoverd, NewController and HTTPClient are required")
	}
	st, err := cfg.Host.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: host status: %w", err)
	}
	r := &run{cfg: cfg, m: m, log: logger, status: st, apps: map[string]*appState{}}
	r.values = map[string]string{
		"domain":      cfg.Domain,
		"cluster_key": cfg.ClusterKey,
		"external_ip": st.ExternalIP,
		"host_id":     st.ID,
	}
	maps.Copy(r.values, imageValues(cfg.Images))
	if err := r.checkFresh(ctx); err != nil {
		return nil, err
	}
	for _, s := range m.Steps {
		if err := r.step(ctx, s); err != nil {
			return nil, &StepError{ID: s.ID, Action: s.Action, Err: err}
		}
	}
	if r.join != "" {
		fmt.Fprintln(cfg.Out, r.join)
	}
	if r.clusterAdd != "" {
		fmt.Fprintln(cfg.Out, r.clusterAdd)
	}
	return &Result{ClusterAdd: r.clusterAdd, Join: r.join, Duration: time.Since(start)}, nil
}

// step expands, decodes and runs one step, then prints its line.
func (r *run) step(ctx context.Context, s Step) error {
	raw, err := expand(s.Raw, r.values)
	if err != nil {
		return err
	}
	a := actions[s.Action]
	fields := a.new()
	if err := strictDecode(raw, fields); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	detail, err := fields.run(ctx, r, s.ID)
	if err != nil {
		return err
	}
	line := r.cfg.Now().Format("15:04:05.000000") + " " + s.Action + " " + s.ID
	if detail != "" {
		line += " " + detail
	}
	fmt.Fprintln(r.cfg.Out, line)
	return nil
}

// action is one kind of step.
type action interface {
	// run does the step and returns the detail its line shows.
	run(ctx context.Context, r *run, id string) (detail string, err error)
}

// actions maps action names to their field structs.
var actions = map[string]struct{ new func() action }{
	"run-app":      {func() action { return &runApp{} }},
	"add-app":      {func() action { return &addApp{} }},
	"scale-app":    {func() action { return &deployApp{} }},
	"deploy-app":   {func() action { return &deployApp{} }},
	"gen-random":   {func() action { return &genRandom{} }},
	"gen-ssh-key":  {func() action { return &genSSHKey{} }},
	"gen-tls-cert": {func() action { return &genTLSCert{} }},
	"wait":         {func() action { return &wait{} }},
	"add-route":    {func() action { return &addRoute{} }},
	"add-api-key":  {func() action { return &addAPIKey{} }},
	"add-provider": {func() action { return &addProvider{} }},
	"cluster-add":  {func() action { return &clusterAdd{} }},
	"join":         {func() action { return &join{} }},
}

// setValues records a step's outputs for later steps.
func (r *run) setValues(prefix string, vals map[string]string) {
	for k, v := range vals {
		if k == "" {
			r.values[prefix] = v
		} else {
			r.values[prefix+"."+k] = v
		}
	}
}

// controller returns the controller client, which reaches the manifest's
// controller service by name ("http://controller.discoverd"): each
// connection goes to a live instance, wherever it runs. The first call
// checks that one is registered, for a clear error when none is.
func (r *run) controller(ctx context.Context) (Controller, error) {
	if r.ctrl != nil {
		return r.ctrl, nil
	}
	ref := r.m.Controller
	if ref.Service == "" {
		return nil, errors.New("the manifest names no controller service")
	}
	key, err := r.controllerKey()
	if err != nil {
		return nil, err
	}
	insts, err := r.cfg.Discoverd.Instances(ctx, ref.Service)
	if err != nil {
		return nil, fmt.Errorf("find the controller in discoverd: %w", err)
	}
	if len(insts) == 0 {
		return nil, fmt.Errorf("no instance of discoverd service %q (is the controller up?)", ref.Service)
	}
	r.ctrl = r.cfg.NewController(ref.URL(), key)
	return r.ctrl, nil
}

// serviceURL is the base URL that reaches a discoverd service by name.
func serviceURL(service string) string { return "http://" + service + "." + discoverdclient.Domain }

// controllerKey is the manifest's controller key, expanded.
func (r *run) controllerKey() (string, error) {
	key, err := expandString(r.m.Controller.Key, r.values)
	if err != nil {
		return "", fmt.Errorf("controller key: %w", err)
	}
	return key, nil
}

// image returns the reference of an image key.
func (r *run) image(key string) (string, error) { return imageRef(r.cfg.Images, key) }

// imageValues are the run's values that come from the images manifest:
// image.KEY for each image, and stacks.slugbuilder and stacks.slugrunner,
// gitreceive's --stack-slugbuilder and --stack-slugrunner: NAME=REF,
// comma-separated, for each stack other than the default whose
// slugbuilder and slugrunner are both in the manifest. A stack whose
// images are not built yet (flynn-images --later-stacks) is left out, and
// the upgrade after they are built adds it.
func imageValues(images map[string]string) map[string]string {
	values := map[string]string{}
	for k, ref := range images {
		values["image."+k] = ref
	}
	var builders, runners []string
	for _, st := range stacks.All() {
		builder, runner := images["slugbuilder"+st.ImageSuffix], images["slugrunner"+st.ImageSuffix]
		if st.ImageSuffix == "" || builder == "" || runner == "" {
			continue
		}
		builders = append(builders, st.Name+"="+builder)
		runners = append(runners, st.Name+"="+runner)
	}
	values["stacks.slugbuilder"] = strings.Join(builders, ",")
	values["stacks.slugrunner"] = strings.Join(runners, ",")
	return values
}

// imageRef returns the reference of an image key in an images manifest's
// refs.
func imageRef(images map[string]string, key string) (string, error) {
	ref, ok := images[key]
	if !ok || ref == "" {
		return "", fmt.Errorf("no image %q in the images manifest (run `make images`)", key)
	}
	return ref, nil
}

// bootstrappedJobs returns the live jobs on the host that belong to an app:
// the marks of a cluster already running here.
func (r *run) bootstrappedJobs(ctx context.Context) ([]*host.ActiveJob, error) {
	jobs, err := r.cfg.Host.ListJobs(ctx)
	if err != nil {
		return nil, fmt.Errorf("list host jobs: %w", err)
	}
	var out []*host.ActiveJob
	for _, j := range jobs {
		if j.State.Terminal() || j.Job == nil || j.Job.Metadata[controller.JobMetaAppID] == "" {
			continue
		}
		out = append(out, j)
	}
	return out, nil
}

// checkFresh refuses a bootstrapped host, or with Force tears its cluster
// down first.
func (r *run) checkFresh(ctx context.Context) error {
	jobs, err := r.bootstrappedJobs(ctx)
	if err != nil {
		return err
	}
	if len(jobs) == 0 {
		return nil
	}
	names := map[string]bool{}
	for _, j := range jobs {
		names[j.Job.Metadata[controller.JobMetaAppName]] = true
	}
	if !r.cfg.Force {
		list := strings.Join(sortedKeys(names), ", ")
		return fmt.Errorf("%w: %d jobs of %s are running", ErrBootstrapped, len(jobs), list)
	}
	fmt.Fprintf(r.cfg.Out, "%s force: stopping %d jobs of %s\n", r.cfg.Now().Format("15:04:05.000000"), len(jobs), strings.Join(sortedKeys(names), ", "))
	return r.teardown(ctx)
}

func sortedKeys(m map[string]bool) []string { return slices.Sorted(maps.Keys(m)) }
