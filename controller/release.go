package controller

import (
	"strconv"
	"time"
)

// Artifact types.
const (
	// ArtifactTypeDocker is a Docker image reference that exists on the
	// hosts: the platform's own images, built on every node.
	ArtifactTypeDocker = "docker"
	// ArtifactTypeDockerArchive is a URL (a signed blobstore URL) of an
	// image saved with `docker save`: how an image built elsewhere (`flynn
	// docker push`, a Dockerfile build) reaches every host, which loads
	// it before its first job.
	ArtifactTypeDockerArchive = "docker-archive"
)

// Artifact is what a job runs: a Docker image.
type Artifact struct {
	ID        string            `json:"id"`
	Type      string            `json:"type"`
	URI       string            `json:"uri"`
	Meta      map[string]string `json:"meta,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
}

// Release is an immutable combination of an artifact, environment and
// process types, numbered per app (v1, v2, …).
type Release struct {
	ID    string `json:"id"`
	AppID string `json:"app"`
	// Version is assigned by the controller: 1 for an app's first release.
	Version    int                    `json:"version"`
	ArtifactID string                 `json:"artifact"`
	Env        map[string]string      `json:"env,omitempty"`
	Processes  map[string]ProcessType `json:"processes,omitempty"`
	Meta       map[string]string      `json:"meta,omitempty"`
	CreatedAt  time.Time              `json:"created_at"`
}

// ProcessType is how to run one kind of process of a release (a Procfile
// entry).
type ProcessType struct {
	Cmd []string          `json:"cmd,omitempty"`
	Env map[string]string `json:"env,omitempty"`
	// Ports are allocated on the host and passed as $PORT, $PORT_1, ….
	Ports []Port `json:"ports,omitempty"`
	// Service is the discoverd service the first port registers in unless
	// the port names its own (Port.Service); empty registers nothing.
	Service   string     `json:"service,omitempty"`
	Resources *Resources `json:"resources,omitempty"`
	// Omni runs one job of this type on every host per unit of count.
	Omni bool `json:"omni,omitempty"`
	// Volumes are named host volumes mounted into every job of this type.
	// They outlive the jobs, so a job the scheduler starts again (after a
	// crash, on the same host) finds the data of the one before.
	Volumes []Volume `json:"volumes,omitempty"`
	// Persistent jobs are started again by their host after it restarts,
	// before any scheduler runs: for the components the scheduler itself
	// needs (discoverd, postgres, the controller, the scheduler).
	Persistent bool `json:"persistent,omitempty"`
	// HostNetwork runs the jobs in their node's network namespace instead
	// of one of their own. Only system apps' process types may ask for it.
	HostNetwork bool `json:"host_network,omitempty"`
}

// Exclusive reports whether two jobs of the type must never run at once on
// a host: they mount named volumes, whose data (an etcd member's, a
// Postgres cluster's) only one process may own. A deployment replaces such
// a job by stopping the old one before it starts the new one, where other
// types start the new one first.
func (p ProcessType) Exclusive() bool { return len(p.Volumes) > 0 }

// Volume is a named volume on the job's host, mounted at Target.
type Volume struct {
	Name   string `json:"name"`
	Target string `json:"target"`
}

// Port is a port a process listens on.
type Port struct {
	// Port is a fixed port; zero lets the host allocate one.
	Port int `json:"port,omitempty"`
	// Target is the port the process listens on inside its job, for an
	// image that listens on a port of its own (EXPOSE 6379) rather than
	// on $PORT: the host publishes it on the allocated port, which is
	// where the job is registered and reached. $PORT is Target then.
	// Zero: the process listens on the allocated port itself ($PORT).
	Target int    `json:"target,omitempty"`
	Proto  string `json:"proto"`
	// CheckPath makes the job's readiness check an HTTP GET of this path
	// (a status below 500 passes) instead of a TCP connect.
	CheckPath string `json:"check_path,omitempty"`
	// Service is the discoverd service this port registers in: how a port
	// after the first (a daemon's metrics port) is found. A job is up only
	// once every port with a service accepts connections.
	Service string `json:"service,omitempty"`
}

// Resources are a job's limits; zero means the host's default.
type Resources struct {
	// Memory in bytes.
	Memory int64 `json:"memory,omitempty"`
	// CPU in millicores (1000 = one core).
	CPU      int64 `json:"cpu,omitempty"`
	MaxFD    int64 `json:"max_fd,omitempty"`
	MaxProcs int64 `json:"max_procs,omitempty"`
	// Disk bounds what a job writes to its own filesystem, in bytes.
	Disk int64 `json:"disk,omitempty"`
}

// ReleaseVersion formats a release version the way users see it ("v3").
func ReleaseVersion(v int) string { return "v" + strconv.Itoa(v) }

// AppReleaseRequest is the body of PUT /apps/:id/release and
// POST /apps/:id/deploy.
type AppReleaseRequest struct {
	ReleaseID string `json:"id"`
}

// ReleasePatch is the body of PATCH /apps/:id/release: the one way to
// change an app's env, and how a push releases its build. The controller
// makes a new release from the app's current release as it is when the
// patch is applied, changed as the patch says, and deploys it, all in one
// transaction that holds the app. Two patches never undo each other: an
// `env unset` while a push builds stays unset in the push's release, and
// two `env set`s of different names both land. (A client that read the
// release, changed it and created a new one would put back what changed
// in between.)
type ReleasePatch struct {
	// Env changes the env; nil keeps it.
	Env *EnvPatch `json:"env,omitempty"`
	// ArtifactID replaces the artifact when not empty.
	ArtifactID string `json:"artifact,omitempty"`
	// Processes replaces every process type when not nil (an empty map
	// leaves none: omitzero sends it).
	Processes map[string]ProcessType `json:"processes,omitzero"`
	// Meta replaces the meta when not nil.
	Meta map[string]string `json:"meta,omitzero"`
	// NoDeploy makes the new release without deploying it: the app keeps
	// its current release until the caller deploys the new one (POST
	// /apps/:id/deploy), having first run what must succeed before it
	// serves (a push's release command). Such a patch always makes a new
	// release, even one equal to the current, so that the caller has one
	// to deploy; the answer (201) has no deployment.
	NoDeploy bool `json:"no_deploy,omitempty"`
	// CreatedBy is set by the controller, never read from a body: the
	// person whose API key asked for the patch ("": the system).
	CreatedBy string `json:"-"`
}

// ReleaseMetaCreatedBy is the release meta that names the person whose API
// key made the release. The controller sets it (and removes one a client
// sent): a release made with the controller key has none.
const ReleaseMetaCreatedBy = "flynn.created_by"

// WithCreator is meta with ReleaseMetaCreatedBy set to by, or removed
// when by is empty; meta itself is not changed.
func WithCreator(meta map[string]string, by string) map[string]string {
	out := make(map[string]string, len(meta)+1)
	for k, v := range meta {
		if k != ReleaseMetaCreatedBy {
			out[k] = v
		}
	}
	if by != "" {
		out[ReleaseMetaCreatedBy] = by
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// EnvPatch changes some variables of an env and keeps the others.
type EnvPatch struct {
	// Set adds or replaces these variables.
	Set map[string]string `json:"set,omitempty"`
	// Unset removes these variables; a name that is not set is ignored. A
	// name may not be both set and unset.
	Unset []string `json:"unset,omitempty"`
}

// PatchedRelease answers PATCH /apps/:id/release.
type PatchedRelease struct {
	// Release is the app's new current release, or the one it has when
	// the patch changed nothing (nil when it has none).
	Release *Release `json:"release,omitempty"`
	// Deployment deploys the new release; nil when the patch changed
	// nothing (the answer is then 200, not 201).
	Deployment *Deployment `json:"deployment,omitempty"`
}
