package daemon

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/host"
)

// fakeBackend runs "containers" in memory. A container's first Cmd word
// says how it behaves: "exit N" exits at once with N; "sleep" exits 0 on
// SIGTERM; "ignore-term" exits 137 on SIGKILL only. Image "missing" is not
// there; Cmd "nope" cannot start. A container on a network has address
// appIP; its disk use is what setDisk said, its CPU and memory what
// setStats said.
type fakeBackend struct {
	mu         sync.Mutex
	seq        int
	containers map[string]*fakeContainer
	networks   map[string]AppNetwork
	appIP      string
	trail      *trail
	// statsTick, when set, makes Stats answer at the next multiple of it,
	// as Docker's stats collector does at its ticks; statsHang makes it
	// answer only when its context ends.
	statsTick time.Duration
	statsHang bool
	// statsReadAt, when set, is the time of every reading, as from an
	// engine that answers with the reading it has.
	statsReadAt time.Time
	// statsInFlight and statsMaxInFlight count the Stats calls running.
	statsInFlight, statsMaxInFlight int
	// While createFails is above zero, Create fails and counts it down.
	createFails atomic.Int32
}

type fakeContainer struct {
	id      string
	spec    *ContainerSpec
	started bool
	running bool
	code    int
	disk    int64
	du      int // DiskUsage calls
	exited  chan struct{}
	// logStreams counts Logs calls (for "early-eof").
	logStreams int
	// startedAt is when it started; cpuShare is the CPUs it keeps busy,
	// memory the bytes it uses.
	startedAt time.Time
	cpuShare  float64
	memory    uint64
}

var _ Backend = (*fakeBackend)(nil)

func newFakeBackend(tr *trail) *fakeBackend {
	return &fakeBackend{containers: map[string]*fakeContainer{}, networks: map[string]AppNetwork{}, appIP: "127.0.0.1", trail: tr}
}

// fakeGateway is the gateway of every fake network.
const fakeGateway = "172.30.0.1"

func (f *fakeBackend) EnsureNetwork(_ context.Context, n AppNetwork) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if have, ok := f.networks[n.Name]; ok {
		if have != n {
			return "", fmt.Errorf("network %s exists on bridge %s", n.Name, have.Bridge)
		}
		return fakeGateway, nil
	}
	f.networks[n.Name] = n
	f.trail.add("create network " + n.Name + " " + n.Bridge)
	return fakeGateway, nil
}

func (f *fakeBackend) ContainerIP(_ context.Context, id string) (string, error) {
	c, err := f.get(id)
	if err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.spec.Network == "" || !c.running {
		return "", nil
	}
	return f.appIP, nil
}

func (f *fakeBackend) DiskUsage(_ context.Context, id string, _ int64) (int64, error) {
	c, err := f.get(id)
	if err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c.du++
	return c.disk, nil
}

// setStats sets the CPUs the named container keeps busy and the memory it
// uses.
func (f *fakeBackend) setStats(name string, cpuShare float64, memory uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.containers {
		if c.spec.Name == name {
			c.cpuShare, c.memory = cpuShare, memory
		}
	}
}

func (f *fakeBackend) Stats(ctx context.Context, id string) (ContainerStats, error) {
	c, err := f.get(id)
	if err != nil {
		return ContainerStats{}, err
	}
	f.mu.Lock()
	f.statsInFlight++
	f.statsMaxInFlight = max(f.statsMaxInFlight, f.statsInFlight)
	tick, hang, readAt := f.statsTick, f.statsHang, f.statsReadAt
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.statsInFlight--
		f.mu.Unlock()
	}()
	var wait <-chan time.Time
	switch {
	case hang:
		wait = make(chan time.Time) // never
	case tick > 0:
		now := time.Now()
		t := time.NewTimer(now.Truncate(tick).Add(tick).Sub(now))
		defer t.Stop()
		wait = t.C
	}
	if wait != nil {
		select {
		case <-wait:
		case <-ctx.Done():
			return ContainerStats{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !c.running {
		return ContainerStats{}, fmt.Errorf("%w: %s", ErrNotRunning, id)
	}
	if readAt.IsZero() {
		readAt = time.Now()
	}
	limit := uint64(8 << 30) // the node's memory
	if m := c.spec.Resources.Memory; m > 0 {
		limit = uint64(m)
	}
	return ContainerStats{Read: readAt, CPU: time.Duration(float64(readAt.Sub(c.startedAt)) * c.cpuShare), Memory: c.memory, MemoryLimit: limit}, nil
}

// maxStatsInFlight returns the most Stats calls that ran at once.
func (f *fakeBackend) maxStatsInFlight() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.statsMaxInFlight
}

// setDisk sets what the named container has written.
func (f *fakeBackend) setDisk(name string, n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.containers {
		if c.spec.Name == name {
			c.disk = n
		}
	}
}

// diskCalls returns how often the named container's disk use was measured.
func (f *fakeBackend) diskCalls(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.containers {
		if c.spec.Name == name {
			return c.du
		}
	}
	return 0
}

// spec returns the spec the named container was created with.
func (f *fakeBackend) spec(name string) *ContainerSpec {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.containers {
		if c.spec.Name == name {
			return c.spec
		}
	}
	return nil
}

func (f *fakeBackend) Create(_ context.Context, spec *ContainerSpec) (string, error) {
	if spec.Image == "missing" {
		return "", fmt.Errorf("%w: %s", ErrImageNotFound, spec.Image)
	}
	if f.createFails.Add(-1) >= 0 {
		return "", errors.New("create container: the engine is busy")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.containers {
		if c.spec.Name == spec.Name {
			return "", fmt.Errorf("name %s in use", spec.Name)
		}
	}
	f.seq++
	id := "c" + strconv.Itoa(f.seq)
	f.containers[id] = &fakeContainer{id: id, spec: spec, exited: make(chan struct{})}
	return id, nil
}

func (f *fakeBackend) get(id string) (*fakeContainer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrContainerNotFound, id)
	}
	return c, nil
}

func (f *fakeBackend) Start(_ context.Context, id string) error {
	c, err := f.get(id)
	if err != nil {
		return err
	}
	if len(c.spec.Cmd) > 0 && c.spec.Cmd[0] == "nope" {
		return fmt.Errorf("%w: exec: \"nope\": executable file not found", ErrStartFailed)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c.started, c.running, c.startedAt = true, true, time.Now()
	f.trail.add("start " + c.spec.Name)
	if len(c.spec.Cmd) == 2 && c.spec.Cmd[0] == "exit" {
		code, _ := strconv.Atoi(c.spec.Cmd[1])
		f.exitLocked(c, code)
	}
	return nil
}

func (f *fakeBackend) exitLocked(c *fakeContainer, code int) {
	if c.running {
		c.running, c.code = false, code
		close(c.exited)
	}
}

// crash ends a container behind the daemon's back.
func (f *fakeBackend) crash(name string, code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.containers {
		if c.spec.Name == name {
			f.exitLocked(c, code)
		}
	}
}

func (f *fakeBackend) Signal(_ context.Context, id, sig string) error {
	c, err := f.get(id)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.trail.add("signal " + sig)
	mode := ""
	if len(c.spec.Cmd) > 0 {
		mode = c.spec.Cmd[0]
	}
	switch {
	case sig == "SIGKILL":
		f.exitLocked(c, 137)
	case sig == "SIGTERM" && mode != "ignore-term":
		f.exitLocked(c, 0)
	}
	return nil
}

func (f *fakeBackend) Wait(ctx context.Context, id string) (int, error) {
	c, err := f.get(id)
	if err != nil {
		return 0, err
	}
	select {
	case <-c.exited:
		f.mu.Lock()
		defer f.mu.Unlock()
		return c.code, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (f *fakeBackend) Logs(ctx context.Context, id string, since time.Time, fn func(host.LogLine) error) error {
	c, err := f.get(id)
	if err != nil {
		return err
	}
	if since.IsZero() {
		_ = fn(host.LogLine{Stream: host.StreamStdout, Time: time.Now(), Data: strings.Join(c.spec.Cmd, " ") + "\n"})
	}
	// "early-eof" is Docker's follower ending while the container runs on:
	// the first stream ends at once, the next writes one more line.
	if len(c.spec.Cmd) > 0 && c.spec.Cmd[0] == "early-eof" {
		f.mu.Lock()
		c.logStreams++
		n := c.logStreams
		f.mu.Unlock()
		if n == 1 {
			return nil
		}
		if n == 2 {
			_ = fn(host.LogLine{Stream: host.StreamStdout, Time: time.Now(), Data: "followed again\n"})
		}
	}
	select {
	case <-c.exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeBackend) Remove(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.containers[id]; ok {
		f.exitLocked(c, 137)
		delete(f.containers, id)
	}
	return nil
}

func (f *fakeBackend) List(_ context.Context, labels map[string]string) ([]Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Container
outer:
	for _, c := range f.containers {
		for k, v := range labels {
			if c.spec.Labels[k] != v {
				continue outer
			}
		}
		out = append(out, Container{ID: c.id, Labels: c.spec.Labels, Running: c.running, ExitCode: c.code, HostNetwork: c.spec.Network == ""})
	}
	return out, nil
}

func (f *fakeBackend) count() (all, started int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.containers {
		all++
		if c.started {
			started++
		}
	}
	return all, started
}

// trail records what happened, in order, across the fakes.
type trail struct {
	mu  sync.Mutex
	evs []string
}

func (t *trail) add(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.evs = append(t.evs, s)
}

func (t *trail) list() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.evs...)
}

// fakeIPTables records the iptables commands run, in the trail, and
// each iptables-restore input in restores.
// While failRestores is above zero, iptables-restore fails and counts
// it down.
type fakeIPTables struct {
	trail        *trail
	fail         error
	restores     *restores
	failRestores *atomic.Int32
}

func (f fakeIPTables) Run(_ context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	f.trail.add("firewall " + name + " " + strings.Join(args, " "))
	if name == "iptables-restore" && f.failRestores != nil && f.failRestores.Add(-1) >= 0 {
		return nil, errors.New("fake: xtables lock held")
	}
	if f.restores != nil && name == "iptables-restore" {
		f.restores.add(string(stdin))
	}
	return nil, f.fail
}

// restores are the inputs iptables-restore was given, in order.
type restores struct {
	mu   sync.Mutex
	list []string
}

func (r *restores) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, s)
}

// count returns how many inputs declared chain.
func (r *restores) count(chain string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, in := range r.list {
		if strings.Contains(in, ":"+chain+" ") {
			n++
		}
	}
	return n
}

// last returns the last input that declared chain, or "".
func (r *restores) last(chain string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.list) - 1; i >= 0; i-- {
		if strings.Contains(r.list[i], ":"+chain+" ") {
			return r.list[i]
		}
	}
	return ""
}

// fakeRegistrar records registrations; while fails is above zero, a
// registration fails (discoverd not answering yet) and counts it down.
// With nodes, it is a NodeWatcher sending what the test sends there.
type fakeRegistrar struct {
	trail *trail
	fails *atomic.Int32
	nodes chan []string
}

// watchingRegistrar is a fakeRegistrar that is a NodeWatcher too.
type watchingRegistrar struct{ fakeRegistrar }

var _ NodeWatcher = watchingRegistrar{}

func (f watchingRegistrar) WatchNodes(ctx context.Context) <-chan []string {
	out := make(chan []string)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case addrs := <-f.nodes:
				select {
				case out <- addrs:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

func (f fakeRegistrar) Register(_ context.Context, service string, inst *discoverd.Instance) (Registration, error) {
	if f.fails != nil && f.fails.Add(-1) >= 0 {
		f.trail.add("refused " + service)
		return nil, errors.New("connection refused")
	}
	f.trail.add("register " + service + " " + inst.Addr)
	return fakeRegistration{trail: f.trail, what: service + " " + inst.Addr}, nil
}

type fakeRegistration struct {
	trail *trail
	what  string
}

func (r fakeRegistration) Deregister(context.Context) error {
	r.trail.add("deregister " + r.what)
	return nil
}
