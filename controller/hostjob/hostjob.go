// Package hostjob is the one translation between a job as the controller
// sees it (an app, a release, a process type or a one-off command) and the
// host.Job a flynn-host runs.
//
//	ForAppProcess (scheduler) ────────┐
//	ForProcess (bootstrap, checks) ───┼─> core: id, build env, FLYNN_* env, metadata, network, limits ─> host.Job
//	ForOneOff  (controller's runner) ─┘
//	host.Job metadata ─> OwnerOf ─> app, release, process type ("" for a one-off)
//
// Both kinds of job go through one core, so they carry the same metadata
// keys and the same FLYNN_* environment and cannot drift apart. The core
// also decides a job's network and limits: a process type with
// HostNetwork (only system apps have one) runs in its node's network
// namespace, one-off jobs of the type too, with the limits the type sets;
// every other job runs on the node's app network with at least a memory
// and a pids limit (DefaultMemory, DefaultPids) where its type sets none. What makes
// a process a long-running service (ports registered in discoverd, named
// volumes, persistence across host restarts) belongs to ForProcess alone.
// A one-off job never has controller.JobMetaType in its metadata: that is
// how the scheduler tells its own jobs from one-off runs and leaves the
// latter alone.
//
// The core also gives every job of an app that is not a system app the
// cluster's build settings (controller.BuildEnv: package mirrors, CA
// certificates), under the job's own env: a variable of the release, the
// process type or the request wins over the cluster's of the same name,
// and FLYNN_* variables the core sets win over both. The settings are
// passed in by the caller, as they were when the job was built: a job
// already running keeps what it started with (as on Heroku, a restart
// picks up a change). System apps' jobs get nothing of them, so an
// operator's settings cannot steer the platform itself.
package hostjob

import (
	"maps"
	"strconv"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/random"
)

// The limits of a job on the app network whose process type sets none:
// one app must not be able to take its node's memory or fork it to death.
// Jobs on the host's network (the platform's own) get no default.
const (
	DefaultMemory int64 = 1 << 30 // 1 GiB
	DefaultPids   int64 = 512
)

// MetaReleaseVersion is the metadata key of the release's version number
// ("3" for v3), set when the version is known.
const MetaReleaseVersion = "flynn.release-version"

// App names the app and release a job belongs to.
type App struct {
	ID   string
	Name string // "" when unknown: FLYNN_APP_NAME is then empty and the name stays out of the metadata
	// ReleaseID is the release the job runs.
	ReleaseID string
	// ReleaseVersion is the release's number; 0 when unknown.
	ReleaseVersion int
	// System marks a system app (controller.App.System): its jobs get
	// nothing of the cluster's build settings.
	System bool
}

// NewID returns a fresh job id on hostID: "<hostID>-<uuid>", the host API's
// convention.
func NewID(hostID string) string { return hostID + "-" + random.UUID() }

// ForProcess builds the host job for one process of type typ of a release
// of app appName, without the cluster's build settings: a process of a
// system app (what bootstrap starts), or one built to be checked. A "web"
// process without ports gets one HTTP port registered in discoverd as
// "<app>-web", the service its routes point at; any other process with a
// Service registers its first port there, and a port that names its own
// service registers there. The type's volumes are mounted and its
// persistence kept.
func ForProcess(hostID, appName string, rel *controller.Release, art *controller.Artifact, typ string) *host.Job {
	return forProcess(hostID, App{ID: rel.AppID, Name: appName, ReleaseID: rel.ID, ReleaseVersion: rel.Version}, rel, art, typ, nil)
}

// ForAppProcess is ForProcess for a process of app, which gets the
// cluster's build settings be (nil: none) under its own env unless app is
// a system app. The scheduler builds every process so.
func ForAppProcess(hostID string, app *controller.App, rel *controller.Release, art *controller.Artifact, typ string, be *controller.BuildEnv) *host.Job {
	return forProcess(hostID, App{ID: rel.AppID, Name: app.Name, ReleaseID: rel.ID, ReleaseVersion: rel.Version, System: app.System}, rel, art, typ, be)
}

func forProcess(hostID string, app App, rel *controller.Release, art *controller.Artifact, typ string, be *controller.BuildEnv) *host.Job {
	appName := app.Name
	pt := rel.Processes[typ]
	env := maps.Clone(rel.Env)
	if env == nil {
		env = map[string]string{}
	}
	maps.Copy(env, pt.Env)
	job := newJob(hostID, app, typ, art, pt.Cmd, env, pt, nil, be)
	job.Metadata[controller.JobMetaType] = typ

	service := pt.Service
	ports := pt.Ports
	if typ == "web" && len(ports) == 0 {
		ports = []controller.Port{{Proto: "http"}}
		if service == "" {
			service = appName + "-web"
		}
	}
	for i, p := range ports {
		hp := host.Port{Port: p.Port, Target: p.Target, Proto: p.Proto, CheckPath: p.CheckPath, Service: p.Service}
		if hp.Proto != "http" {
			hp.Proto = "tcp"
		}
		if i == 0 && hp.Service == "" {
			hp.Service = service
		}
		job.Config.Ports = append(job.Config.Ports, hp)
	}
	for _, v := range pt.Volumes {
		job.Config.Mounts = append(job.Config.Mounts, host.Mount{Type: host.MountVolume, Source: v.Name, Target: v.Target})
	}
	job.Config.Persistent = pt.Persistent
	return job
}

// OneOff is a one-off run of an app's release: `flynn run`, a build, a
// migration.
type OneOff struct {
	App App
	// Type is the process type the run takes its settings from; "" for a
	// plain command. It is passed as FLYNN_PROCESS_TYPE but never put in
	// the metadata.
	Type string
	// Process is that type's definition (zero for a plain command): only
	// its resources and its network apply.
	Process  controller.ProcessType
	Artifact *controller.Artifact
	// Entrypoint replaces the artifact's entrypoint when set (a tool's
	// image whose entrypoint is a daemon); Args are then its arguments.
	Entrypoint []string
	Args       []string
	// Env is the job's own environment: the release's, the type's and
	// the request's. The cluster's build settings and the FLYNN_*
	// variables are added to it.
	Env map[string]string
	// BuildEnv is the cluster's build settings, which the job gets under
	// Env unless App is a system app's; nil: none.
	BuildEnv *controller.BuildEnv
	// Meta is extra metadata (a build's commit, say); the app keys set by
	// this package win over it, and a process type in it is dropped.
	Meta map[string]string
	// TTY gives the job a terminal.
	TTY bool
}

// ForOneOff builds the host job of a one-off run on hostID. It gets the
// type's resources and network (a system app's migration, say, needs to
// reach what the type's processes reach) but none of what makes a process
// a service: no ports
// (it is not a service), no persistence (nothing starts it again), and no
// volumes. Volumes are per host and a one-off job lands on the least-loaded
// host, not on the one holding the type's data, so it would mount an
// unrelated or new empty volume of that name; and where it did land next
// to the type's job, two writers on one data directory (a second
// postgres) can corrupt it. A one-off job reaches a type's data through
// the type's service instead.
func ForOneOff(hostID string, o OneOff) *host.Job {
	env := maps.Clone(o.Env)
	if env == nil {
		env = map[string]string{}
	}
	job := newJob(hostID, o.App, o.Type, o.Artifact, o.Args, env, o.Process, o.Meta, o.BuildEnv)
	job.Config.Entrypoint = o.Entrypoint
	job.Config.TTY = o.TTY
	return job
}

// newJob is the core both kinds share: id, env (with be's settings for an
// app that is not a system app), metadata, network and limits, the last
// two from pt. It takes ownership of env.
func newJob(hostID string, app App, typ string, art *controller.Artifact, args []string, env map[string]string, pt controller.ProcessType, extraMeta map[string]string, be *controller.BuildEnv) *host.Job {
	id := NewID(hostID)
	if !app.System {
		addBuildEnv(env, be)
	}
	env["FLYNN_APP_ID"] = app.ID
	env["FLYNN_APP_NAME"] = app.Name
	env["FLYNN_RELEASE_ID"] = app.ReleaseID
	env["FLYNN_PROCESS_TYPE"] = typ
	env["FLYNN_JOB_ID"] = id

	meta := maps.Clone(extraMeta)
	if meta == nil {
		meta = map[string]string{}
	}
	delete(meta, controller.JobMetaType) // only ForProcess sets it: the scheduler adopts jobs that have it
	meta[controller.JobMetaAppID] = app.ID
	meta[controller.JobMetaReleaseID] = app.ReleaseID
	if app.Name != "" {
		meta[controller.JobMetaAppName] = app.Name
	}
	if app.ReleaseVersion > 0 {
		meta[MetaReleaseVersion] = strconv.Itoa(app.ReleaseVersion)
	}
	return &host.Job{
		ID:       id,
		Artifact: art.URI,
		Config:   host.JobConfig{Args: args, Env: env, Resources: limits(pt), HostNetwork: pt.HostNetwork},
		Metadata: meta,
	}
}

// addBuildEnv adds the cluster's build settings to env where env has no
// variable of the name: the app's own setting wins, variable by variable.
// The certificates go in as controller.CACertsEnv.
func addBuildEnv(env map[string]string, be *controller.BuildEnv) {
	if be == nil {
		return
	}
	for k, v := range be.Env {
		if _, own := env[k]; !own {
			env[k] = v
		}
	}
	if _, own := env[controller.CACertsEnv]; !own && be.CACerts != "" {
		env[controller.CACertsEnv] = be.CACerts
	}
}

// limits are the limits of a job of process type pt: the type's, and
// for a job on the app network the defaults where the type sets none.
func limits(pt controller.ProcessType) host.Resources {
	res := Resources(pt.Resources)
	if pt.HostNetwork {
		return res
	}
	if res.Memory == 0 {
		res.Memory = DefaultMemory
	}
	if res.Pids == 0 {
		res.Pids = DefaultPids
	}
	return res
}

// Resources converts a process type's limits to the host's, as they are:
// CPU millicores become CPU shares (1000 millicores, one core, is 1024
// shares), MaxProcs the pids limit. nil means no limits. The defaults of
// jobs on the app network are added when a job is built, not here.
func Resources(r *controller.Resources) host.Resources {
	if r == nil {
		return host.Resources{}
	}
	return host.Resources{Memory: r.Memory, CPUShares: r.CPU * 1024 / 1000, Pids: r.MaxProcs, Disk: r.Disk}
}

// Owner is whose job a host job is, as its metadata says.
type Owner struct {
	AppID     string
	ReleaseID string
	// Type is the process type; "" for a one-off job.
	Type string
}

// OneOff reports whether the job is a one-off run rather than a process
// of a formation.
func (o Owner) OneOff() bool { return o.Type == "" }

// OwnerOf reads whose job j is from its metadata. It reports false for a
// job that belongs to no app (a component job started outside any app).
func OwnerOf(j *host.Job) (Owner, bool) {
	if j == nil {
		return Owner{}, false
	}
	m := j.Metadata
	o := Owner{AppID: m[controller.JobMetaAppID], ReleaseID: m[controller.JobMetaReleaseID], Type: m[controller.JobMetaType]}
	if o.AppID == "" || o.ReleaseID == "" {
		return Owner{}, false
	}
	return o, true
}
