package daemon

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/openflynn/flynn/host"
)

// Labels every container the daemon starts carries, so that a restarted
// daemon finds and re-adopts its containers and never touches others'.
const (
	LabelJobID  = "flynn.job-id"
	LabelHostID = "flynn.host-id"
	// LabelJob holds the job (with its allocated ports) as JSON, so the
	// daemon can rebuild a job from its container alone.
	LabelJob = "flynn.job"
)

// Errors a Backend returns (wrapped) for the daemon to turn into API errors.
var (
	// ErrImageNotFound: the job's artifact is not an image on this host.
	ErrImageNotFound = errors.New("image not found")
	// ErrStartFailed: the runtime could not start the process (bad command…).
	ErrStartFailed = errors.New("container failed to start")
	// ErrContainerNotFound: the container is gone.
	ErrContainerNotFound = errors.New("container not found")
	// ErrNotRunning: the container exists but does not run (Stats).
	ErrNotRunning = errors.New("container not running")
	// ErrPortInUse: a port to publish is taken on the node by something
	// other than a job (the allocator knows only its jobs' ports).
	ErrPortInUse = errors.New("port in use on the node")
	// ErrLogStalled: the runtime stopped delivering a running container's
	// output although it has more; the daemon follows again.
	ErrLogStalled = errors.New("log follow stalled")
)

// ContainerSpec is what the daemon asks a backend to create.
type ContainerSpec struct {
	Name       string
	Image      string
	Entrypoint []string // replaces the image's entrypoint when set
	Cmd        []string // replaces the image's command when set
	Env        []string // KEY=value
	Labels     map[string]string
	Binds      []Bind
	Resources  host.Resources
	WorkingDir string
	User       string
	Stdin      bool
	TTY        bool
	// CapAdd are the capabilities the process keeps; all others are dropped.
	CapAdd []string
	// Sysctls are set in the container's own namespaces (Network only).
	Sysctls map[string]string
	// Network is the network the container joins (the app network); empty
	// runs it in the host's network namespace.
	Network string
	// Publish are ports published on PublishIP (Network only).
	Publish   []PublishedPort
	PublishIP string
	// ExtraHosts are /etc/hosts entries, "name:address"; the address
	// "host-gateway" is the node on Docker's default bridge (Network only).
	ExtraHosts []string
}

// PublishedPort is a container port reachable on the node's address.
type PublishedPort struct {
	// Port is the port on the node's address.
	Port int
	// Target is the container's port that Port reaches; 0 is Port.
	Target int
	Proto  string // "tcp" or "udp"
}

// AppNetwork is the network app jobs run on.
type AppNetwork struct {
	// Name is the network's name in the runtime.
	Name string
	// Bridge is the node's interface to it; the firewall filters what
	// enters the node from there.
	Bridge string
}

// Bind is a host path mounted into a container.
type Bind struct {
	Source, Target string
	ReadOnly       bool
}

// Container is what a backend reports about a container it runs.
type Container struct {
	ID         string
	Labels     map[string]string
	Running    bool
	ExitCode   int
	StartedAt  time.Time
	FinishedAt time.Time
	// HostNetwork: the container runs in the host's network namespace.
	HostNetwork bool
}

// Backend runs containers. The Docker implementation is host/docker; a fake
// serves unit tests. Everything except Wait and Logs returns promptly.
type Backend interface {
	// Create creates (without starting) a container.
	Create(ctx context.Context, spec *ContainerSpec) (id string, err error)
	// Start starts a created container; ErrStartFailed when the process
	// cannot be started.
	Start(ctx context.Context, id string) error
	// Signal sends a signal ("SIGTERM", "KILL", "9", …) to the container's process.
	Signal(ctx context.Context, id, signal string) error
	// Wait blocks until the container is not running and returns its exit code.
	Wait(ctx context.Context, id string) (int, error)
	// Logs streams the container's output written after since to fn, until
	// the container has exited and its output is drained (or ctx ends).
	Logs(ctx context.Context, id string, since time.Time, fn func(host.LogLine) error) error
	// Remove removes the container, killing it if it runs.
	Remove(ctx context.Context, id string) error
	// List returns the containers carrying all of labels, running or not.
	List(ctx context.Context, labels map[string]string) ([]Container, error)
	// EnsureNetwork creates the app network unless it exists, and returns
	// its gateway: the node's address on the bridge, which the network's
	// containers reach the node at. It is idempotent; a network of that
	// name with another bridge is an error.
	EnsureNetwork(ctx context.Context, n AppNetwork) (gateway string, err error)
	// ContainerIP returns a running container's address on its network,
	// which the node can dial; "" for a container on the host's network.
	ContainerIP(ctx context.Context, id string) (string, error)
	// DiskUsage returns how many bytes the container has written to its
	// own filesystem (volumes not counted). It may stop counting, and
	// return what it has, once past limit (limit > 0), so that measuring
	// a job that fills its disk costs no more than its limit allows.
	DiskUsage(ctx context.Context, id string, limit int64) (int64, error)
	// Stats reads a running container's CPU and memory use once;
	// ErrNotRunning when it does not run. It may take up to the
	// runtime's sampling interval (Docker's is a second), and many calls
	// at once take no longer than one.
	Stats(ctx context.Context, id string) (ContainerStats, error)
}

// ImageLoader is the optional part of a Backend that loads images from
// archives, for jobs whose artifact is an archive's URL (see archive.go).
// A backend without it runs only images that are on the node.
type ImageLoader interface {
	// InspectImage describes the image ref names; ErrImageNotFound when
	// there is none.
	InspectImage(ctx context.Context, ref string) (ImageInfo, error)
	// LoadImage loads the images of an archive as `docker load` does,
	// with the names its manifest gives them, and returns once they are
	// loaded.
	LoadImage(ctx context.Context, archive io.Reader) error
}

// ImageInfo is what the daemon needs to know of an image.
type ImageInfo struct {
	// ID is the image's id ("sha256:…").
	ID string
	// User is the user its processes run as ("" is root).
	User string
	// Labels are the image's labels.
	Labels map[string]string
	// Tags are the image's names ("repo:tag").
	Tags []string
}

// ContainerStats is one reading of a container's resource use.
type ContainerStats struct {
	// Read is when the runtime took the reading.
	Read time.Time
	// CPU is the CPU time the container has used since it started.
	CPU time.Duration
	// Memory is the memory it uses, without the inactive file cache.
	Memory uint64
	// MemoryLimit is its memory limit, or the node's memory without one.
	MemoryLimit uint64
}

// Attacher is the optional part of a Backend that connects a client to a
// container's stdio (one-off jobs, `flynn-host run`).
type Attacher interface {
	// Attach connects to the container's streams. Output is copied to stdout
	// and stderr (a TTY container has only stdout) until the container's
	// output ends, then done receives the copy's error (nil at a clean end).
	// stdin is nil unless withStdin. close detaches.
	Attach(ctx context.Context, id string, withStdin, tty bool, stdout, stderr io.Writer) (stdin io.WriteCloser, done <-chan error, close func(), err error)
	// Resize sets a TTY container's terminal size.
	Resize(ctx context.Context, id string, height, width uint16) error
}
