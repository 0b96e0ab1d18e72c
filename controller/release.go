package controller

import (
	"strconv"
	"time"
)

// ArtifactTypeDocker is the only artifact type: a Docker image reference
// that exists on the hosts.
const ArtifactTypeDocker = "docker"

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
	// Service is the discoverd service the first port registers in; empty
	// registers nothing.
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

// Volume is a named volume on the job's host, mounted at Target.
type Volume struct {
	Name   string `json:"name"`
	Target string `json:"target"`
}

// Port is a port a process listens on.
type Port struct {
	// Port is a fixed port; zero lets the host allocate one.
	Port  int    `json:"port,omitempty"`
	Proto string `json:"proto"`
	// CheckPath makes the job's readiness check an HTTP GET of this path
	// (a status below 500 passes) instead of a TCP connect.
	CheckPath string `json:"check_path,omitempty"`
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
