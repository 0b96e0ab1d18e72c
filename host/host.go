// Package host holds the API types of flynn-host, the layer-0 job runner:
// jobs and their configuration, job states and events, host status, log
// lines and the framing of attached job streams. It imports only the
// standard library so that the daemon, its Go client and every consumer
// (bootstrap, the scheduler) share one definition.
//
// The HTTP API, served by host/server on :1113 (every call needs the cluster
// key as the basic-auth password when the host has one):
//
//	GET    /host/jobs                      list jobs (running and recently finished); ?stats=true adds each running job's JobStats
//	GET    /host/jobs/:id                  one job
//	GET    /host/jobs/:id/stats            a running job's CPU and memory use (JobStats)
//	PUT    /host/jobs/:id                  add (start) a job
//	DELETE /host/jobs/:id                  stop a job: SIGTERM, SIGKILL after its grace period
//	POST   /host/jobs/:id/signal/:signal   send a signal (name like TERM or SIGHUP, or a number)
//	GET    /host/jobs/:id/log              log lines as JSON lines (?follow=true&tail=N&stream=stdout|stderr)
//	GET    /host/events                    Server-Sent Events of job state changes (?job_id=…)
//	GET    /host/status                    host id, addresses, resources, job counts
//	POST   /host/attach                    a job's stdio over a hijacked connection (see Frame)
//	POST   /host/images/build              build a Dockerfile: body a tar of the context, answer NDJSON BuildEvents (see build.go)
//	GET    /host/images/:id/archive        `docker save` of an image this host built, then untags it (see build.go)
//	POST   /host/gc                        remove exited job containers and unused images now (?dry_run=true: remove nothing), answer a GCReport (see gc.go)
//	GET    /metrics                        Prometheus metrics (flynn_host_*, per-job CPU and memory, Go and process)
package host

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// DefaultStopGrace is how long a job gets between SIGTERM and SIGKILL when
// its config names no grace period.
const DefaultStopGrace = 10 * time.Second

// Job is what a client asks a host to run.
type Job struct {
	// ID is unique on the host; by convention "<hostID>-<uuid>".
	ID string `json:"id"`
	// Artifact is a Docker image reference that exists on the host, or
	// the http(s) URL of an image archive (what `docker save` writes: a
	// signed blobstore URL), which the host fetches and loads before the
	// job's container is created, once per URL (see ArchiveURL).
	Artifact string `json:"artifact"`
	// Config says how the job runs.
	Config JobConfig `json:"config"`
	// Metadata is free-form (app id, release id, process type), kept with
	// the container so that it survives a daemon restart. The Meta* keys
	// label the job's log lines and metrics.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// JobConfig says how a job runs.
type JobConfig struct {
	// Entrypoint replaces the image's entrypoint when set.
	Entrypoint []string `json:"entrypoint,omitempty"`
	// Args replace the image's command when set (the arguments of its entrypoint).
	Args []string `json:"args,omitempty"`
	// Env is added to the image's environment; PORT, PORT_1…, the node's
	// address and discoverd and the like are set by the host (see
	// host/daemon) and override it.
	Env map[string]string `json:"env,omitempty"`
	// Ports are allocated from the host's range when Port is 0.
	Ports []Port `json:"ports,omitempty"`
	// Mounts are named volumes, and for a HostNetwork job bind mounts of
	// host paths too.
	Mounts []Mount `json:"mounts,omitempty"`
	// Resources limit the job; zero values mean no limit.
	Resources Resources `json:"resources,omitzero"`
	// WorkingDir overrides the image's working directory.
	WorkingDir string `json:"working_dir,omitempty"`
	// User overrides the image's user ("uid", "uid:gid" or a name).
	User string `json:"user,omitempty"`
	// StopGrace is the time between SIGTERM and SIGKILL; 0 means DefaultStopGrace.
	StopGrace Duration `json:"stop_grace,omitempty"`
	// Stdin keeps the job's stdin open for an attached client.
	Stdin bool `json:"stdin,omitempty"`
	// TTY gives the job a terminal (for attached one-off jobs).
	TTY bool `json:"tty,omitempty"`
	// HostNetwork runs the job in the node's network namespace, as the
	// platform's own components need (discoverd, the router, …). Any other
	// job has a namespace of its own on the node's app network: its ports
	// are published on the node's address, it runs as an unprivileged user,
	// it may mount named volumes but no host path, and it reaches nothing
	// on the node but the router's ports.
	HostNetwork bool `json:"host_network,omitempty"`
	// Persistent jobs are started again, under a new id, when the daemon
	// starts and finds they ended while no daemon ran (the machine or the
	// daemon restarted), all at once, oldest first: the components that
	// must run before the scheduler can restart anything (discoverd,
	// postgres, the controller, the scheduler itself), each of which waits
	// for what it needs.
	Persistent bool `json:"persistent,omitempty"`
}

// Metadata keys of a job that belongs to an app. The scheduler sets them
// (controller.JobMeta* are these); flynn-host, to which they are opaque
// strings, labels the job's log lines and metrics with them.
const (
	MetaAppID     = "flynn.app-id"
	MetaAppName   = "flynn.app-name"
	MetaReleaseID = "flynn.release-id"
	MetaType      = "flynn.process-type"
)

// Port is a port the job listens on.
type Port struct {
	// Port is the host port; 0 asks the host to allocate one from its range.
	Port int `json:"port,omitempty"`
	// Target is the port the process listens on inside its job's own
	// network namespace, for an image that listens where it likes (EXPOSE
	// 6379) rather than on $PORT: the host publishes Target on Port.
	// Zero means the same as Port, which is what $PORT says. A job on the
	// host's network has no namespace of its own and cannot have one.
	// $PORT (or $PORT_N) is Target when set.
	Target int `json:"target,omitempty"`
	// Proto is "tcp" (default) or "http"; it is passed to discoverd.
	Proto string `json:"proto,omitempty"`
	// Service is the discoverd service the job is registered under while it
	// is up; empty registers nothing and does not delay "up".
	Service string `json:"service,omitempty"`
	// CheckPath makes the readiness check an HTTP GET of this path (any
	// status below 500 passes) instead of a TCP connect.
	CheckPath string `json:"check_path,omitempty"`
}

// Mount types.
const (
	MountBind   = "bind"
	MountVolume = "volume"
)

// Mount is a bind mount of a host path or a named volume kept by the host.
type Mount struct {
	// Type is MountBind or MountVolume (default when Source is not absolute).
	Type string `json:"type,omitempty"`
	// Source is a host path (bind) or a volume name (volume). Named volumes
	// live under the host's state directory and outlive the jobs using them.
	Source string `json:"source"`
	// Target is the absolute path inside the container.
	Target string `json:"target"`
	// ReadOnly mounts it read-only.
	ReadOnly bool `json:"read_only,omitempty"`
}

// Resources are a job's limits; zero means unlimited.
type Resources struct {
	// Memory is the memory limit in bytes.
	Memory int64 `json:"memory,omitempty"`
	// CPUShares is the relative CPU weight (Docker's --cpu-shares, 1024 = one share).
	CPUShares int64 `json:"cpu_shares,omitempty"`
	// Pids limits the number of processes.
	Pids int64 `json:"pids,omitempty"`
	// Disk bounds, in bytes, what the job writes to its own filesystem
	// (not to volumes); past it the job is killed and fails.
	Disk int64 `json:"disk,omitempty"`
}

// JobState is where a job is in its life.
type JobState string

// Job states: pending → starting → up → stopping → down | crashed | failed.
const (
	// StatePending: accepted, container not started yet.
	StatePending JobState = "pending"
	// StateStarting: running, service ports not accepting connections yet.
	StateStarting JobState = "starting"
	// StateUp: running and every service port accepts connections.
	StateUp JobState = "up"
	// StateStopping: asked to stop, not exited yet.
	StateStopping JobState = "stopping"
	// StateDown: exited after a stop, or exited with status 0.
	StateDown JobState = "down"
	// StateCrashed: exited by itself with a non-zero status.
	StateCrashed JobState = "crashed"
	// StateFailed: could not be started (or its container vanished).
	StateFailed JobState = "failed"
)

// Terminal reports whether the job has ended.
func (s JobState) Terminal() bool {
	return s == StateDown || s == StateCrashed || s == StateFailed
}

// Running reports whether the job's container runs: it started and has
// not ended. Only a running job has stats.
func (s JobState) Running() bool {
	return s == StateStarting || s == StateUp || s == StateStopping
}

// ActiveJob is a job as the host runs it.
type ActiveJob struct {
	// Job is the job as asked, with its allocated ports filled in.
	Job *Job `json:"job"`
	// HostID is the host running it.
	HostID string `json:"host_id"`
	// ContainerID is the Docker container id.
	ContainerID string `json:"container_id,omitempty"`
	// State is the job's current state.
	State JobState `json:"state"`
	// ExitStatus is set once the job has exited.
	ExitStatus *int `json:"exit_status,omitempty"`
	// Error says why a job failed.
	Error string `json:"error,omitempty"`
	// CreatedAt is when the host accepted the job.
	CreatedAt time.Time `json:"created_at"`
	// StartedAt is when its container started.
	StartedAt time.Time `json:"started_at,omitzero"`
	// EndedAt is when it exited.
	EndedAt time.Time `json:"ended_at,omitzero"`
	// Stats is the job's CPU and memory use, in a job list asked for
	// with ?stats=true, when the job runs and its stats could be read.
	Stats *JobStats `json:"stats,omitempty"`
}

// JobStats is a running job's use of CPU and memory, as the host reads it
// from the container runtime.
type JobStats struct {
	// CPUPercent is the job's CPU use in percent of one CPU (200 is two
	// CPUs kept busy), over the time since the host's previous reading of
	// the job, which is at least a fraction of a second (the daemon's
	// CPUWindow) and at most a minute old: a job read for the first time
	// in a minute is read twice. Where the runtime gave no second reading
	// in time, it is the average over the job's life.
	CPUPercent float64 `json:"cpu_percent"`
	// CPUSeconds is the CPU time the job has used since it started.
	CPUSeconds float64 `json:"cpu_seconds"`
	// MemoryBytes is the memory the job uses, without the file cache the
	// kernel can take back (what `docker stats` shows).
	MemoryBytes uint64 `json:"memory_bytes"`
	// MemoryLimitBytes is the job's memory limit; 0 when it has none.
	MemoryLimitBytes uint64 `json:"memory_limit_bytes,omitempty"`
	// Time is when the runtime took the reading.
	Time time.Time `json:"time"`
}

// Event is a job state change, sent on GET /host/events.
type Event struct {
	// ID increases with each event of a daemon run.
	ID uint64 `json:"id"`
	// JobID is the job that changed.
	JobID string `json:"job_id"`
	// State is its new state.
	State JobState `json:"state"`
	// Job is the job after the change.
	Job *ActiveJob `json:"job"`
}

// HostStatus describes a host, from GET /host/status.
type HostStatus struct {
	// ID is the host's id.
	ID string `json:"id"`
	// ExternalIP is the address jobs are reached on.
	ExternalIP string `json:"external_ip"`
	// URL is the host API's URL.
	URL string `json:"url"`
	// PortRange is the range job ports are allocated from ("55000-55999").
	PortRange string `json:"port_range"`
	// PortsFree is how many ports of the range are free.
	PortsFree int `json:"ports_free"`
	// Resources are what the host has.
	Resources HostResources `json:"resources"`
	// Jobs counts jobs by state.
	Jobs map[JobState]int `json:"jobs"`
}

// HostResources are a host's totals.
type HostResources struct {
	// Memory is the total memory in bytes (0 when unknown).
	Memory int64 `json:"memory"`
	// CPUs is the number of CPUs.
	CPUs int `json:"cpus"`
}

// Log streams.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
)

// LogLine is one line of a job's output, sent as a JSON line on
// GET /host/jobs/:id/log.
type LogLine struct {
	// Stream is StreamStdout or StreamStderr.
	Stream string `json:"stream"`
	// Time is when the job wrote it.
	Time time.Time `json:"time"`
	// Data is the line, with its trailing newline when it had one.
	Data string `json:"data"`
}

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("10s"); it also reads a number of nanoseconds.
type Duration time.Duration

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("duration must be a string like \"10s\" or nanoseconds")
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

var (
	jobIDPattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	volumePattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	servicePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	envNameRE      = regexp.MustCompile(EnvNamePattern)
)

// EnvNamePattern is the one rule for the name of an environment variable
// of a job: letters, digits and '_', not starting with a digit, at most 255
// bytes (Heroku's rule for config vars, which every shell and language can
// read; lowercase stays allowed for names like http_proxy). flynn-host
// refuses a job with any other name, and the controller refuses releases,
// env changes and one-off jobs with one (schema/common.json holds the same
// pattern, which schema's tests check), so a name the controller accepts
// never makes every job of a release fail on its host.
const EnvNamePattern = `^[A-Za-z_][A-Za-z0-9_]{0,254}$`

// ValidEnvName reports whether name matches EnvNamePattern.
func ValidEnvName(name string) bool { return envNameRE.MatchString(name) }

// EnvNameRule says EnvNamePattern in words, for error messages.
const EnvNameRule = "a variable name is letters, digits and '_', not starting with a digit, at most 255 characters"

// ValidJobID reports whether id may name a job (it becomes part of a
// container name and a file name).
func ValidJobID(id string) bool { return jobIDPattern.MatchString(id) }

// FieldError is a validation failure of one field of a job.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Validate checks what can be checked without the host: ids, names, paths
// and limits. It returns a *FieldError.
func (j *Job) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
	}
	if !ValidJobID(j.ID) {
		return bad("id", "must be 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit")
	}
	if strings.TrimSpace(j.Artifact) == "" {
		return bad("artifact", "is required (a Docker image on the host, or the http(s) URL of an image archive)")
	}
	if strings.Contains(j.Artifact, "://") {
		if _, err := ArchiveURL(j.Artifact); err != nil {
			return bad("artifact", "%v", err)
		}
	}
	c := &j.Config
	for k, v := range c.Env {
		if !ValidEnvName(k) {
			return bad("config.env", "invalid variable name %q: %s", k, EnvNameRule)
		}
		if strings.IndexByte(v, 0) >= 0 {
			// A process gets its environment as NUL-terminated strings.
			return bad("config.env", "the value of %s holds a NUL byte, which no process environment can carry", k)
		}
	}
	seen, seenTarget := map[int]bool{}, map[int]bool{}
	for i, p := range c.Ports {
		field := fmt.Sprintf("config.ports[%d]", i)
		if p.Port < 0 || p.Port > 65535 {
			return bad(field+".port", "must be 0 (allocate) or 1-65535")
		}
		if p.Port != 0 && seen[p.Port] {
			return bad(field+".port", "port %d given twice", p.Port)
		}
		seen[p.Port] = true
		if p.Target < 0 || p.Target > 65535 {
			return bad(field+".target", "must be 0 (the same as port) or 1-65535")
		}
		if p.Target != 0 {
			if c.HostNetwork {
				return bad(field+".target", "a job on the host's network listens on its port itself; only a job with a network of its own can have a target")
			}
			if seenTarget[p.Target] {
				return bad(field+".target", "target %d given twice", p.Target)
			}
			seenTarget[p.Target] = true
		}
		if p.Proto != "" && p.Proto != "tcp" && p.Proto != "http" {
			return bad(field+".proto", "must be tcp or http")
		}
		// discoverd's rule for a service name (a DNS label): the port is
		// registered there once up, and a name discoverd refuses would
		// keep the job starting for ever.
		if p.Service != "" && !servicePattern.MatchString(p.Service) {
			return bad(field+".service", "must be 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit")
		}
		if p.CheckPath != "" && !validCheckPath(p.CheckPath) {
			return bad(field+".check_path", "must be a URL path starting with / (no control characters, no broken %%-escapes)")
		}
	}
	for i, m := range c.Mounts {
		field := fmt.Sprintf("config.mounts[%d]", i)
		if !strings.HasPrefix(m.Target, "/") {
			return bad(field+".target", "must be an absolute path")
		}
		switch m.MountType() {
		case MountBind:
			if !c.HostNetwork {
				return bad(field+".type", "only a job with host_network may mount a host path; use a named volume")
			}
			if !strings.HasPrefix(m.Source, "/") {
				return bad(field+".source", "a bind mount needs an absolute host path")
			}
		case MountVolume:
			if !volumePattern.MatchString(m.Source) {
				return bad(field+".source", "a volume name is 1-64 letters, digits, '_', '.' or '-'")
			}
		default:
			return bad(field+".type", "must be bind or volume")
		}
	}
	r := c.Resources
	if r.Memory < 0 || r.CPUShares < 0 || r.Pids < 0 || r.Disk < 0 {
		return bad("config.resources", "limits cannot be negative")
	}
	if r.Memory != 0 && r.Memory < 6<<20 {
		return bad("config.resources.memory", "must be at least 6 MiB")
	}
	if c.StopGrace < 0 {
		return bad("config.stop_grace", "cannot be negative")
	}
	return nil
}

// validCheckPath reports whether the readiness check, a GET of
// http://<job's address><path>, can be made with path: a bad escape or a
// control character would make it fail on every try, and the job would
// never be up.
func validCheckPath(path string) bool {
	const addr = "192.0.2.1:1"
	u, err := url.Parse("http://" + addr + path)
	return strings.HasPrefix(path, "/") && err == nil && u.Host == addr
}

// ContainerPort is the port the job's process listens on: Target when
// set, else Port.
func (p Port) ContainerPort() int {
	if p.Target != 0 {
		return p.Target
	}
	return p.Port
}

// ArchiveURL parses an artifact that is the URL of an image archive: an
// absolute http or https URL with a host. A Docker image reference never
// holds "://", so any artifact that does is meant as one.
func ArchiveURL(artifact string) (*url.URL, error) {
	u, err := url.Parse(artifact)
	if err != nil {
		return nil, fmt.Errorf("an image archive's URL must be a valid http(s) URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("an image archive's URL must be http(s)://HOST/PATH, without credentials; got %s", RedactURL(u))
	}
	return u, nil
}

// RedactURL is u without its query and credentials, for messages: the
// query of a signed blobstore URL is its signature, the credential that
// lets its holder read the blob.
func RedactURL(u *url.URL) string {
	r := *u
	r.User, r.RawQuery, r.ForceQuery, r.Fragment, r.RawFragment = nil, "", false, "", ""
	return r.String()
}

// MountType returns the mount's type, defaulting by the shape of Source.
func (m Mount) MountType() string {
	if m.Type != "" {
		return m.Type
	}
	if strings.HasPrefix(m.Source, "/") {
		return MountBind
	}
	return MountVolume
}

// Grace returns the job's stop grace period.
func (c *JobConfig) Grace() time.Duration {
	if c.StopGrace > 0 {
		return time.Duration(c.StopGrace)
	}
	return DefaultStopGrace
}
