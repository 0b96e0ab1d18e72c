package controller

import (
	"time"

	"github.com/openflynn/flynn/host"
)

// Job states, as flynn-host reports them.
const (
	JobStatePending  = "pending"
	JobStateStarting = "starting"
	JobStateUp       = "up"
	JobStateStopping = "stopping"
	JobStateDown     = "down"
	JobStateCrashed  = "crashed"
	JobStateFailed   = "failed"
)

// ValidJobState reports whether s is a job state.
func ValidJobState(s string) bool {
	switch s {
	case JobStatePending, JobStateStarting, JobStateUp, JobStateStopping, JobStateDown, JobStateCrashed, JobStateFailed:
		return true
	}
	return false
}

// Job is a job of an app as the scheduler (or a one-off run) reports it.
type Job struct {
	// ID is "<hostID>-<uuid>", the host's job id.
	ID        string `json:"id"`
	AppID     string `json:"app"`
	ReleaseID string `json:"release"`
	// Type is the process type; empty for one-off jobs.
	Type   string `json:"type,omitempty"`
	HostID string `json:"host_id,omitempty"`
	State  string `json:"state"`
	// ExitStatus is set once the job has exited.
	ExitStatus *int `json:"exit_status,omitempty"`
	// Error says why a failed job (JobStateFailed) did not start, as its
	// host or the scheduler said: an image that is not on the host, an
	// image archive that would not load.
	Error string `json:"error,omitempty"`
	// Args is the command the job runs; for a one-off job with an
	// entrypoint (NewJob.Entrypoint), the entrypoint then its arguments.
	Args      []string          `json:"args,omitempty"`
	Meta      map[string]string `json:"meta,omitempty"`
	StartedAt *time.Time        `json:"started_at,omitempty"`
	EndedAt   *time.Time        `json:"ended_at,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
	// Stats is a running job's CPU and memory use as its host reads it
	// now, in a job list asked for with ?stats=true; none when the job
	// does not run or its host did not answer in time. It is never
	// stored.
	Stats *host.JobStats `json:"stats,omitempty"`
}

// NewJob asks the controller to run a one-off job of an app.
type NewJob struct {
	// ReleaseID defaults to the app's current release.
	ReleaseID string `json:"release,omitempty"`
	// Args is the command; empty runs the artifact's default.
	Args []string `json:"args,omitempty"`
	// ArtifactID runs the job from this artifact instead of the release's,
	// with the release's env all the same: a tool's image working on the
	// app's resources (`flynn pg` runs the postgres tools' image with the
	// app's DATABASE_URL). The job is still one of the app, on the app's
	// network as the unprivileged user; since whoever may run jobs may
	// also make releases of any artifact, it grants nothing new.
	ArtifactID string `json:"artifact,omitempty"`
	// Entrypoint replaces the image's entrypoint when set, and Args are
	// then its arguments. An image whose entrypoint is a daemon (the
	// postgres tools' image starts its provider) needs it to run a tool.
	Entrypoint []string `json:"entrypoint,omitempty"`
	// Env is added to the release's env.
	Env map[string]string `json:"env,omitempty"`
	TTY bool              `json:"tty,omitempty"`
	// Type names a process type of the release whose settings (cmd, env,
	// resources) the job takes; empty runs Args alone.
	Type string            `json:"type,omitempty"`
	Meta map[string]string `json:"meta,omitempty"`
}

// AttachUpgrade is the Upgrade header value that asks POST /apps/:id/jobs to
// run the job attached: the connection switches protocols and carries the
// host's attach stream byte for byte (see the host API's /host/attach).
const AttachUpgrade = "flynn-attach/0"

// JobIDHeader carries the id of an attached job in the 101 response.
const JobIDHeader = "Flynn-Job-Id"
