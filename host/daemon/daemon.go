// Package daemon is flynn-host's job runner: it turns jobs into containers
// through a Backend, allocates their ports, keeps their logs, reports them
// up once their service ports answer, registers them in discoverd, stops
// them gracefully, and re-adopts them after its own restart.
//
// Jobs are of two kinds. A job with HostNetwork (the platform's own
// components) runs in the node's network namespace with the few
// capabilities they need. Any other job (an app's) is a stranger: it runs
// on the node's app network (a Docker bridge without inter-container
// traffic) with its ports published on the node's address, as an
// unprivileged user with no capability, with named volumes of its own
// and no host path, behind a firewall that lets it reach only the
// router's ports on the node (package firewall), and is killed when it
// writes more than its disk limit.
//
//	AddJob ─► validate ─► ports ─► Backend.Create/Start ─► supervise
//	                                                         ├─ log pump ─► logbuf
//	                                                         ├─ readiness ─► up ─► discoverd
//	                                                         └─ Wait ─► down | crashed ─► release ports
//
// A job's artifact is an image on the node, or the URL of an image
// archive (`docker save`), which the daemon fetches and loads once, under
// a name of its own (archive.go), through a Backend that is also an
// ImageLoader. A port may have a target: the image's own port, which the
// job listens on inside its namespace, published on the allocated one.
//
// Every job learns where it runs from its environment, whatever its own
// env says of these: PORT and PORT_0, PORT_1… (the ports it listens on:
// each port's target, else the port itself), FLYNN_JOB_ID,
// FLYNN_HOST_ID, EXTERNAL_IP and FLYNN_EXTERNAL_IP (the node's address),
// FLYNN_DISCOVERD_URL (the discoverd of its node, http://<address>:1111),
// FLYNN_JOIN (the other discoverds the host knows, comma-separated; empty
// on a lone node) and FLYNN_APP_GATEWAY (the node's address on its app
// network, where app jobs reach the node's router).
//
// Job state lives in three places that agree: memory, one JSON file per job
// under the state directory (for finished jobs and port allocations), and
// the labels of each container (the source of truth for running jobs).
//
// Exited job containers beyond a bound and images nothing uses are
// removed by a garbage collector the daemon owns (gc.go, package gc).
//
// A running job's CPU and memory are read from the backend when asked
// (JobStats, JobsWithStats) and at each metrics scrape (Collector); the
// daemon keeps each job's last reading to turn the runtime's cumulative
// CPU time into a percentage (stats.go).
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/host/firewall"
	"github.com/openflynn/flynn/host/gc"
	"github.com/openflynn/flynn/host/logbuf"
	"github.com/openflynn/flynn/host/ports"
	"github.com/openflynn/flynn/logaggregator"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// Config configures a Daemon.
type Config struct {
	// HostID names the host; job ids start with it by convention. Required.
	HostID string
	// ExternalIP is the address jobs are reached on (and readiness checks dial). Default 127.0.0.1.
	ExternalIP string
	// DiscoverdURL is the discoverd of this node (an omni job on every
	// node), given to every job as FLYNN_DISCOVERD_URL. Default
	// discoverd.NodeURL(ExternalIP).
	DiscoverdURL string
	// DiscoverdPeers are the other discoverds the host knows, given to
	// every job as FLYNN_JOIN (comma-separated): a discoverd starting on
	// this node joins the cluster through them. Default none.
	DiscoverdPeers []string
	// APIPort is the host API's port, for the host's own discoverd registration. Default 1113.
	APIPort int
	// PortMin and PortMax bound the job port range. Default 55000-55999.
	PortMin, PortMax int
	// StateDir holds job records, logs and named volumes. Required.
	StateDir string
	// CABundle is a host CA bundle mounted read-only into every job at the
	// same path, so jobs trust the operator's private CA or TLS proxy. Empty mounts none.
	CABundle string
	// MaxFinished is how many finished jobs stay inspectable. Default 100.
	MaxFinished int
	// LogShipper, when set, is given every output line of each job that
	// belongs to an app (its metadata names one), for the log aggregator;
	// it must not block. Nil ships nothing.
	LogShipper LogShipper
	// LogSegmentSize bounds one of a job's two log segments. Default logbuf.DefaultSegmentSize.
	LogSegmentSize int64
	// Labels are added to every container (tests mark theirs).
	Labels map[string]string
	// CheckInterval is the readiness poll interval. Default 100ms.
	CheckInterval time.Duration

	// AppNetwork is the Docker network app jobs (those without
	// HostNetwork) join; Start creates it when missing. Default "flynn-apps".
	AppNetwork string
	// AppBridge is the app network's bridge interface on the node (at most
	// 15 characters), which the firewall filters. Default "flynnapps0".
	AppBridge string
	// AppUser is the user ("uid:gid") app jobs run as when their own is
	// empty or root. Default "1000:1000", the stack images' "app" user.
	AppUser string
	// Domain is the cluster's domain. When set, app jobs resolve
	// controller.<Domain> and blobstore.<Domain> to the node, whose router
	// serves them. Empty adds no names.
	Domain string
	// NoFirewall installs no firewall, for machines without iptables; app
	// jobs can then reach every service of the node, and Start logs a
	// warning saying so. Default false: the firewall is installed.
	NoFirewall bool
	// FirewallChain is the iptables chain of the app network's rules.
	// Default firewall.DefaultChain.
	FirewallChain string
	// ForwardChain is the iptables chain fencing app jobs off the
	// cluster's other nodes (see firewall.Forward). Default FirewallChain
	// + firewall.ForwardSuffix.
	ForwardChain string
	// RouterPorts are the TCP ports app jobs may reach on the node
	// ("80,443,3000:3999"). Default firewall.DefaultRouterPorts.
	RouterPorts string
	// IPTables runs the iptables binaries. Default firewall.Exec (from
	// $PATH); tests give a fake.
	IPTables firewall.Runner
	// DiskCheckInterval is how often the disk use of a job with a disk
	// limit is measured. Default 5s.
	DiskCheckInterval time.Duration
	// PortHeld reports a port of the range another process holds, which
	// is not handed out. Default: a listen on ExternalIP fails with
	// EADDRINUSE. Tests whose fake jobs are stood in for by listeners of
	// their own turn it off.
	PortHeld func(port int) bool
	// ReviveDelay is how long a persistent job that crashed waits for a
	// replacement (the scheduler's) before the daemon starts one itself.
	// Default 5s.
	ReviveDelay time.Duration
	// CPUWindow is the shortest time a job's CPU percentage is measured
	// over (see host.JobStats): a reading closer than that to the last
	// one gives the last percentage again. Default 250ms.
	CPUWindow time.Duration
	// StatsTimeout bounds the reading of the running jobs' stats for one
	// metrics scrape; the jobs not read by then are left out of it.
	// Default 4s.
	StatsTimeout time.Duration

	// ArchiveClient fetches the image archives of jobs whose artifact is
	// a URL (see archive.go). Default: a plain client, whose dials and
	// waits for an answer's header are bounded. flynn-host gives one that
	// dials "<service>.discoverd" hosts through discoverd, as the
	// controller's blobstore URLs name the blobstore.
	ArchiveClient *http.Client
	// ArchiveTimeout bounds the fetch and load of one image archive.
	// Default DefaultArchiveTimeout.
	ArchiveTimeout time.Duration
	// ArchiveWait bounds how long AddJob waits for the load of its
	// archive, which goes on after it: past it the job is refused with a
	// service_unavailable error to try again, so that a large image
	// does not hold its caller (the scheduler, which starts a host's jobs
	// one after the other within a bound of its own). Default
	// DefaultArchiveWait.
	ArchiveWait time.Duration
	// MaxArchiveSize bounds an image archive, in bytes. Default
	// DefaultMaxArchiveSize.
	MaxArchiveSize int64

	// MaxBuilds is how many image builds (build.go) may run at once;
	// one more is refused with service_unavailable. Default
	// DefaultMaxBuilds.
	MaxBuilds int

	// CollectGarbage runs the garbage collector (gc.go) every
	// GC.Interval, from GC.FirstRun after Start, over a backend that is a
	// gc.Engine. Default false: the daemons of tests share an engine
	// with others. POST /host/gc runs it either way.
	CollectGarbage bool
	// GC configures the garbage collector; its defaults are package gc's,
	// its Owned the daemon's own (this host's job containers), its
	// ArchivePrefix that of the archives the daemon loads.
	GC gc.Config
}

func (c *Config) setDefaults() error {
	if c.HostID == "" || !host.ValidJobID(c.HostID) {
		return fmt.Errorf("host id %q: want letters, digits, '_', '.' or '-'", c.HostID)
	}
	if c.StateDir == "" {
		return fmt.Errorf("a state directory is required")
	}
	if c.ExternalIP == "" {
		c.ExternalIP = "127.0.0.1"
	}
	if c.DiscoverdURL == "" {
		c.DiscoverdURL = discoverd.NodeURL(c.ExternalIP)
	}
	if c.APIPort == 0 {
		c.APIPort = 1113
	}
	if c.PortMin == 0 && c.PortMax == 0 {
		c.PortMin, c.PortMax = 55000, 55999
	}
	if c.MaxFinished <= 0 {
		c.MaxFinished = 100
	}
	if c.CheckInterval <= 0 {
		c.CheckInterval = 100 * time.Millisecond
	}
	if c.PortHeld == nil {
		c.PortHeld = portHeld(c.ExternalIP)
	}
	if c.ReviveDelay <= 0 {
		c.ReviveDelay = 5 * time.Second
	}
	if c.CPUWindow <= 0 {
		c.CPUWindow = 250 * time.Millisecond
	}
	if c.StatsTimeout <= 0 {
		c.StatsTimeout = 4 * time.Second
	}
	if c.AppNetwork == "" {
		c.AppNetwork = "flynn-apps"
	}
	if c.AppBridge == "" {
		c.AppBridge = "flynnapps0"
	}
	if len(c.AppBridge) > 15 {
		return fmt.Errorf("app bridge %q: an interface name has at most 15 characters", c.AppBridge)
	}
	if c.AppUser == "" {
		c.AppUser = "1000:1000"
	}
	if uid, _, ok := numericUser(c.AppUser); !ok || uid == 0 {
		return fmt.Errorf("app user %q: want a non-root \"uid:gid\"", c.AppUser)
	}
	if c.FirewallChain == "" {
		c.FirewallChain = firewall.DefaultChain
	}
	if c.ForwardChain == "" {
		c.ForwardChain = c.FirewallChain + firewall.ForwardSuffix
	}
	if c.RouterPorts == "" {
		c.RouterPorts = firewall.DefaultRouterPorts
	}
	ports, err := firewall.ParsePorts(c.RouterPorts)
	if err != nil {
		return err
	}
	c.RouterPorts = ports
	if c.IPTables == nil {
		c.IPTables = firewall.Exec{}
	}
	if c.DiskCheckInterval <= 0 {
		c.DiskCheckInterval = 5 * time.Second
	}
	if c.ArchiveClient == nil {
		c.ArchiveClient = defaultArchiveClient()
	}
	if c.ArchiveTimeout <= 0 {
		c.ArchiveTimeout = DefaultArchiveTimeout
	}
	if c.ArchiveWait <= 0 {
		c.ArchiveWait = DefaultArchiveWait
	}
	if c.MaxArchiveSize <= 0 {
		c.MaxArchiveSize = DefaultMaxArchiveSize
	}
	if c.MaxBuilds <= 0 {
		c.MaxBuilds = DefaultMaxBuilds
	}
	return nil
}

// Registration is a live discoverd registration.
type Registration interface {
	Deregister(ctx context.Context) error
}

// Registrar registers instances in discoverd and heartbeats them until ctx
// ends or they are deregistered. Deregister removes an instance; the end of
// ctx (the daemon stopping while its jobs run on) leaves it to its TTL or
// to the next daemon. Adapt discoverd/client with RegistrarFunc.
type Registrar interface {
	Register(ctx context.Context, service string, inst *discoverd.Instance) (Registration, error)
}

// NodeWatcher is the optional part of a Registrar that follows the
// cluster's nodes, for the firewall between them (see firewall.Forward).
type NodeWatcher interface {
	// WatchNodes sends the addresses of the nodes registered in discoverd
	// (this one among them): once it knows them, then after each change.
	// It closes the channel when ctx ends.
	WatchNodes(ctx context.Context) <-chan []string
}

// Daemon runs jobs. Create it with New, start it with Start, stop it with
// Close (which leaves the jobs' containers running for the next daemon).
type Daemon struct {
	cfg       Config
	backend   Backend
	registrar Registrar // nil: no discoverd
	log       *slog.Logger
	ports     *ports.Allocator

	closing chan struct{} // closed by Close: every goroutine below ends
	wg      sync.WaitGroup

	mu     sync.Mutex
	jobs   map[string]*job
	events events

	// cpu turns the jobs' CPU readings into rates; metrics are the
	// daemon's counters (see Collector).
	cpu     *cpuMeter
	metrics *metrics

	// loads are the image archives being loaded, by image name: a job
	// of one waits for the load already under way (archive.go).
	loads map[string]*archiveLoad
	// builds holds a token per image build under way (build.go).
	builds chan struct{}

	// gc is the garbage collector, nil without one (gc.go).
	gc *gc.Collector
	// imageMu guards creating, the images of the jobs being created
	// (with how many jobs each), which the collector holds while it
	// removes one.
	imageMu  sync.Mutex
	creating map[string]int

	// revive lists the persistent jobs adoption found ended; Start hands
	// them to revivePersistent.
	revive []*host.ActiveJob
	// appGateway is the app network's gateway, set by Start.
	appGateway string
}

// LogShipper takes job output lines for the log aggregator without
// blocking; logaggregator/shipper's Shipper is one.
type LogShipper interface {
	Ship(logaggregator.Line)
}

// job is the daemon's record of one job. Fields other than the immutable
// ones are guarded by Daemon.mu.
type job struct {
	id   string
	log  *logbuf.Log
	done chan struct{} // closed when the job reaches a terminal state

	active        host.ActiveJob
	stopping      bool           // a stop was asked: exit means down
	regs          []Registration // live discoverd registrations
	stopChecks    func()         // ends the readiness checker
	diskUsed      int64          // set when the job was killed for writing past its disk limit
	ownedByAttach bool           // created by an attach: stopped when its client leaves
	createTook    time.Duration  // how long its container took to create
}

// New returns a daemon; registrar may be nil.
func New(cfg Config, backend Backend, registrar Registrar, logger *slog.Logger) (*Daemon, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if cfg.PortMin < 1 || cfg.PortMax > 65535 || cfg.PortMin > cfg.PortMax {
		return nil, fmt.Errorf("port range %d-%d is invalid", cfg.PortMin, cfg.PortMax)
	}
	for _, dir := range []string{jobsDir(cfg.StateDir), logsDir(cfg.StateDir), volumesDir(cfg.StateDir), appVolumesDir(cfg.StateDir)} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("create state dir: %w", err)
		}
	}
	d := &Daemon{
		cfg:       cfg,
		backend:   backend,
		registrar: registrar,
		log:       logger.With("host_id", cfg.HostID),
		ports:     ports.NewChecked(cfg.PortMin, cfg.PortMax, cfg.PortHeld),
		closing:   make(chan struct{}),
		jobs:      map[string]*job{},
		loads:     map[string]*archiveLoad{},
		builds:    make(chan struct{}, cfg.MaxBuilds),
		cpu:       newCPUMeter(cfg.CPUWindow, maxCPUWindow),
		metrics:   newMetrics(),
		creating:  map[string]int{},
	}
	collector, err := d.newCollector()
	if err != nil {
		return nil, err
	}
	d.gc = collector
	return d, nil
}

// Start makes sure the app network and its firewall are there, re-adopts
// the jobs a previous daemon left (running containers keep running; ones
// that died meanwhile are recorded, and persistent ones among them start
// again), registers the host in discoverd and, when the registrar is a
// NodeWatcher, keeps the firewall towards the other nodes in step with
// them. It returns once adoption is done.
func (d *Daemon) Start(ctx context.Context) error {
	if err := d.setUpAppNetwork(ctx); err != nil {
		return err
	}
	if err := d.adopt(ctx); err != nil {
		return fmt.Errorf("adopt jobs: %w", err)
	}
	if ended := d.revive; len(ended) > 0 {
		d.revive = nil
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.revivePersistent(ended)
		}()
	}
	if d.registrar != nil {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.registerHost()
		}()
	}
	if d.cfg.CollectGarbage && d.gc != nil {
		ctx, cancel := d.lifetime()
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			defer cancel()
			d.gc.Run(ctx)
		}()
	}
	if nw, ok := d.registrar.(NodeWatcher); ok && !d.cfg.NoFirewall {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.fenceNodes(nw)
		}()
	}
	return nil
}

// registerHost keeps the host registered as "flynn-host" while the daemon
// runs, retrying while discoverd is not reachable, and leaves the
// registration to its TTL when the daemon stops.
func (d *Daemon) registerHost() {
	ctx, cancel := d.lifetime()
	defer cancel()
	inst := &discoverd.Instance{
		Addr:  net.JoinHostPort(d.cfg.ExternalIP, strconv.Itoa(d.cfg.APIPort)),
		Proto: "http",
		Meta:  map[string]string{"id": d.cfg.HostID},
	}
	for delay := 200 * time.Millisecond; ; delay = min(delay*2, 5*time.Second) {
		_, err := d.registrar.Register(ctx, "flynn-host", inst)
		if err == nil {
			// The registration outlives the daemon, as its jobs do, for
			// the next daemon to write again (a restart, an upgrade of
			// it) or for the TTL to end: removed at once, the scheduler
			// would take the node for lost while it restarts.
			<-ctx.Done()
			return
		}
		d.log.Warn("register host in discoverd", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// Close stops the daemon's goroutines and waits for them. Jobs keep running
// in their containers; a new daemon re-adopts them. Their discoverd
// registrations stop heartbeating and expire unless the next daemon renews them.
func (d *Daemon) Close() error {
	select {
	case <-d.closing:
	default:
		close(d.closing)
	}
	d.wg.Wait()
	d.cfg.ArchiveClient.CloseIdleConnections()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.events.closeAll()
	return nil
}

// lifetime returns a context that ends when the daemon closes: the context
// of goroutines that outlive the request that started them.
func (d *Daemon) lifetime() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	stop := make(chan struct{})
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		select {
		case <-d.closing:
			cancel()
		case <-stop:
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() { close(stop) })
		cancel()
	}
}

// Jobs returns every job the host knows, oldest first.
func (d *Daemon) Jobs() []*host.ActiveJob {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*host.ActiveJob, 0, len(d.jobs))
	for _, j := range d.jobs {
		out = append(out, j.snapshot())
	}
	sort.Slice(out, func(a, b int) bool {
		if !out[a].CreatedAt.Equal(out[b].CreatedAt) {
			return out[a].CreatedAt.Before(out[b].CreatedAt)
		}
		return out[a].Job.ID < out[b].Job.ID
	})
	return out
}

// Job returns one job or a not_found error.
func (d *Daemon) Job(id string) (*host.ActiveJob, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	j, ok := d.jobs[id]
	if !ok {
		return nil, httpjson.NotFound("job %s not found", id)
	}
	return j.snapshot(), nil
}

// Status describes the host.
func (d *Daemon) Status() *host.HostStatus {
	st := &host.HostStatus{
		ID:         d.cfg.HostID,
		ExternalIP: d.cfg.ExternalIP,
		URL:        "http://" + net.JoinHostPort(d.cfg.ExternalIP, strconv.Itoa(d.cfg.APIPort)),
		PortRange:  d.ports.String(),
		PortsFree:  d.ports.Free(),
		Resources:  host.HostResources{CPUs: runtime.NumCPU(), Memory: totalMemory()},
		Jobs:       map[host.JobState]int{},
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, j := range d.jobs {
		st.Jobs[j.active.State]++
	}
	return st
}

// snapshot copies the job for callers outside the lock.
func (j *job) snapshot() *host.ActiveJob {
	a := j.active
	jb := *a.Job
	a.Job = &jb
	if a.ExitStatus != nil {
		s := *a.ExitStatus
		a.ExitStatus = &s
	}
	return &a
}

func jobsDir(state string) string    { return filepath.Join(state, "jobs") }
func logsDir(state string) string    { return filepath.Join(state, "logs") }
func volumesDir(state string) string { return filepath.Join(state, "volumes") }

// appVolumesDir holds the named volumes of app jobs, apart from those of
// host-network jobs: whatever name an app picks, it never mounts a
// platform component's volume (postgres-data, say).
func appVolumesDir(state string) string { return filepath.Join(state, "app-volumes") }

// totalMemory reads MemTotal from /proc/meminfo; 0 where there is none.
func totalMemory() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	var kb int64
	for _, line := range strings.Split(string(b), "\n") {
		if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
			return kb << 10
		}
	}
	return 0
}

// portHeld reports whether another process listens on port at ip: jobs
// listen there (host-network jobs) or have it published there, and a port
// held by a process the daemon does not know (a job of a cluster taken
// down a moment ago, still exiting) would make the job that gets it fail
// to start.
func portHeld(ip string) func(port int) bool {
	return func(port int) bool {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			// Only a port in use counts: an address that is not this
			// machine's (behind NAT) must not make every port look taken.
			return errors.Is(err, syscall.EADDRINUSE)
		}
		l.Close()
		return false
	}
}
