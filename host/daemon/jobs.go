package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/host/logbuf"
	"github.com/openflynn/flynn/host/ports"
	"github.com/openflynn/flynn/logaggregator"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// AddJob starts a job and returns it in state starting (or up, when it has
// no service ports). Any error means the job does not exist afterwards: no
// container, no ports, no record, so the same id may be tried again.
func (d *Daemon) AddJob(ctx context.Context, jb *host.Job) (*host.ActiveJob, error) {
	j, err := d.createJob(ctx, jb, false)
	if err != nil {
		return nil, err
	}
	if err := d.startJob(ctx, j); err != nil {
		return nil, err
	}
	return d.Job(j.id)
}

// createJob validates jb, reserves its id and ports and creates its
// container, without starting it.
func (d *Daemon) createJob(ctx context.Context, jb *host.Job, forAttach bool) (*job, error) {
	if jb == nil {
		return nil, httpjson.ValidationError("", "a job is required")
	}
	jb = cloneJob(jb)
	if err := jb.Validate(); err != nil {
		var fe *host.FieldError
		if errors.As(err, &fe) {
			return nil, httpjson.ValidationError(fe.Field, "%s", fe.Message)
		}
		return nil, httpjson.ValidationError("", "%v", err)
	}
	j := &job{id: jb.ID, done: make(chan struct{}), ownedByAttach: forAttach}
	j.active = host.ActiveJob{Job: jb, HostID: d.cfg.HostID, State: host.StatePending, CreatedAt: time.Now().UTC()}
	d.mu.Lock()
	if _, dup := d.jobs[jb.ID]; dup {
		d.mu.Unlock()
		return nil, httpjson.Errorf(httpjson.CodeObjectExists, "job %s already exists on this host", jb.ID)
	}
	// The ports are filled in before the job is listed: readers of the
	// job (ListJobs) share its config and must never see it change.
	if err := d.allocatePorts(jb); err != nil {
		d.mu.Unlock()
		d.ports.Release(jb.ID)
		return nil, err
	}
	d.jobs[jb.ID] = j
	d.mu.Unlock()

	undo := func() {
		d.ports.Release(jb.ID)
		d.mu.Lock()
		delete(d.jobs, jb.ID)
		d.mu.Unlock()
	}
	// Its image stays until its container exists (the garbage collector
	// removes none a job is being created with).
	release := d.holdImage(jb)
	defer release()
	// An archive is loaded while the job is listed as pending: it may
	// take minutes, and a second job of it waits for the same load.
	img, err := d.jobImage(ctx, jb)
	if err != nil {
		undo()
		d.metrics.failures.Inc()
		return nil, err
	}
	binds, err := d.binds(jb, img.user)
	if err != nil {
		undo()
		return nil, err
	}
	spec := d.containerSpec(jb, binds, img)
	begin := time.Now()
	id, err := d.backend.Create(ctx, spec)
	took := time.Since(begin)
	if err != nil {
		undo()
		d.metrics.failures.Inc()
		if errors.Is(err, ErrImageNotFound) {
			return nil, httpjson.ValidationError("artifact", "image %q is not on this host", img.name)
		}
		d.log.Error("create container", "job_id", jb.ID, "err", err)
		return nil, fmt.Errorf("create container for job %s: %w", jb.ID, err)
	}
	lg, err := logbuf.Open(filepath.Join(logsDir(d.cfg.StateDir), jb.ID), d.cfg.LogSegmentSize)
	if err != nil {
		d.removeContainer(id)
		undo()
		return nil, fmt.Errorf("open job log: %w", err)
	}
	d.mu.Lock()
	j.log = lg
	j.active.ContainerID = id
	j.createTook = took
	d.mu.Unlock()
	return j, nil
}

// startJob starts a created job's container and supervises it.
func (d *Daemon) startJob(ctx context.Context, j *job) error {
	d.mu.Lock()
	id, took := j.active.ContainerID, j.createTook
	d.mu.Unlock()
	begin := time.Now()
	if err := d.backend.Start(ctx, id); err != nil {
		d.metrics.failures.Inc()
		d.removeContainer(id)
		_ = j.log.Remove()
		d.ports.Release(j.id)
		d.mu.Lock()
		delete(d.jobs, j.id)
		d.mu.Unlock()
		if errors.Is(err, ErrPortInUse) {
			e := httpjson.Errorf(httpjson.CodeConflict, "job %s cannot start: %v", j.id, err)
			e.Retry = true // the next allocation picks other ports
			return e
		}
		if errors.Is(err, ErrStartFailed) {
			return httpjson.ValidationError("config.args", "job %s cannot start: %s", j.id, strings.TrimPrefix(err.Error(), ErrStartFailed.Error()+": "))
		}
		return fmt.Errorf("start job %s: %w", j.id, err)
	}
	d.metrics.starts.Inc()
	d.metrics.startDuration.Observe((took + time.Since(begin)).Seconds())
	d.mu.Lock()
	j.active.State = host.StateStarting
	j.active.StartedAt = time.Now().UTC()
	d.persistLocked(j)
	d.emitLocked(j)
	d.mu.Unlock()
	d.log.Info("job started", "job_id", j.id, "container_id", short(id))
	d.supervise(j, time.Time{})
	return nil
}

// binds turns the job's mounts into host paths, creating named volumes,
// and adds the CA bundle. The Docker socket is never mounted into a job;
// an app job mounts named volumes only (Validate refuses its bind mounts),
// from a directory of their own, owned by the job's user (user, as the
// job or its image names it, made unprivileged by appUser).
func (d *Daemon) binds(jb *host.Job, user string) ([]Bind, error) {
	var out []Bind
	for i, m := range jb.Config.Mounts {
		field := fmt.Sprintf("config.mounts[%d].source", i)
		switch m.MountType() {
		case host.MountVolume:
			var dir string
			if bridged(jb) {
				var err error
				if dir, err = d.appVolume(m.Source, d.appUser(user)); err != nil {
					return nil, err
				}
			} else {
				dir = filepath.Join(volumesDir(d.cfg.StateDir), m.Source)
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return nil, fmt.Errorf("create volume %s: %w", m.Source, err)
				}
			}
			out = append(out, Bind{Source: dir, Target: m.Target, ReadOnly: m.ReadOnly})
		case host.MountBind:
			if bridged(jb) {
				// Validate refuses it first; this guards any other way in.
				return nil, httpjson.ValidationError(fmt.Sprintf("config.mounts[%d].type", i), "only a job with host_network may mount a host path")
			}
			if err := checkBindSource(m.Source); err != nil {
				return nil, httpjson.ValidationError(field, "%v", err)
			}
			out = append(out, Bind{Source: filepath.Clean(m.Source), Target: m.Target, ReadOnly: m.ReadOnly})
		}
	}
	if d.cfg.CABundle != "" {
		out = append(out, Bind{Source: d.cfg.CABundle, Target: d.cfg.CABundle, ReadOnly: true})
	}
	return out, nil
}

// checkBindSource refuses host paths that would hand a job the host: the
// root, the run directories holding the Docker socket, and any socket.
func checkBindSource(src string) error {
	p := filepath.Clean(src)
	if real, err := filepath.EvalSymlinks(p); err == nil {
		p = real
	}
	switch p {
	case "/", "/run", "/var/run", "/var/lib/docker", "/proc", "/sys", "/dev":
		return fmt.Errorf("mounting %s into a job is not allowed", src)
	}
	if strings.HasSuffix(p, "docker.sock") || strings.HasPrefix(p, "/var/lib/docker/") {
		return fmt.Errorf("mounting the Docker engine into a job is not allowed")
	}
	if st, err := os.Stat(p); err == nil && st.Mode()&os.ModeSocket != 0 {
		return fmt.Errorf("mounting a socket into a job is not allowed")
	}
	return nil
}

// allocatePorts fills in the job's port numbers from the range.
func (d *Daemon) allocatePorts(jb *host.Job) error {
	var fixed []int
	want := 0
	for _, p := range jb.Config.Ports {
		if p.Port == 0 {
			want++
		} else {
			fixed = append(fixed, p.Port)
		}
	}
	if err := d.ports.Reserve(jb.ID, fixed...); err != nil {
		return httpjson.Errorf(httpjson.CodeConflict, "%v", err)
	}
	got, err := d.ports.Allocate(jb.ID, want)
	if err != nil {
		if errors.Is(err, ports.ErrExhausted) {
			e := httpjson.Errorf(httpjson.CodeServiceUnavailable, "no free ports on this host: %v", err)
			e.Retry = true
			return e
		}
		return err
	}
	for i := range jb.Config.Ports {
		if jb.Config.Ports[i].Port == 0 {
			jb.Config.Ports[i].Port, got = got[0], got[1:]
		}
	}
	return nil
}

// containerSpec builds the container for a job whose ports are allocated,
// from img, the job's image on the node.
func (d *Daemon) containerSpec(jb *host.Job, binds []Bind, img resolvedImage) *ContainerSpec {
	env := map[string]string{}
	for k, v := range jb.Config.Env {
		env[k] = v
	}
	// The port the process listens on, which is the published one unless
	// the port has a target.
	for i, p := range jb.Config.Ports {
		if i == 0 {
			env["PORT"] = strconv.Itoa(p.ContainerPort())
		}
		env["PORT_"+strconv.Itoa(i)] = strconv.Itoa(p.ContainerPort())
	}
	env["FLYNN_JOB_ID"] = jb.ID
	env["FLYNN_HOST_ID"] = d.cfg.HostID
	// EXTERNAL_IP is the job contract (as PORT is); FLYNN_EXTERNAL_IP is
	// the same for the platform's own daemons, whose --external-ip it sets.
	env["EXTERNAL_IP"] = d.cfg.ExternalIP
	env["FLYNN_EXTERNAL_IP"] = d.cfg.ExternalIP
	// Where the job is decides these, not its release: a component talks
	// to the discoverd of its own node, a discoverd starting here joins
	// through the others, and a router listens on this node's gateway of
	// the app network for the app jobs here.
	env["FLYNN_DISCOVERD_URL"] = d.cfg.DiscoverdURL
	env["FLYNN_JOIN"] = strings.Join(d.cfg.DiscoverdPeers, ",")
	env["FLYNN_APP_GATEWAY"] = d.gateway()
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	envList := make([]string, 0, len(keys))
	for _, k := range keys {
		envList = append(envList, k+"="+env[k])
	}
	jobJSON, _ := json.Marshal(jb)
	labels := map[string]string{}
	for k, v := range d.cfg.Labels {
		labels[k] = v
	}
	labels[LabelJobID] = jb.ID
	labels[LabelHostID] = d.cfg.HostID
	labels[LabelJob] = string(jobJSON)
	spec := &ContainerSpec{
		Name:       "flynn-" + jb.ID,
		Image:      img.name,
		Entrypoint: jb.Config.Entrypoint,
		Cmd:        jb.Config.Args,
		Env:        envList,
		Labels:     labels,
		Binds:      binds,
		Resources:  jb.Config.Resources,
		WorkingDir: jb.Config.WorkingDir,
		User:       jb.Config.User,
		Stdin:      jb.Config.Stdin,
		TTY:        jb.Config.TTY,
	}
	if !bridged(jb) {
		spec.CapAdd = hostNetworkCapabilities()
		return spec
	}
	spec.Network = d.cfg.AppNetwork
	spec.User = d.appUser(img.user)
	spec.Sysctls = appSysctls()
	spec.PublishIP = d.cfg.ExternalIP
	// Container port = host port = $PORT: the app binds what it is told
	// and is reached at the node's address on the same number; a port
	// with a target (an image that listens where it likes) is published
	// from the target. Ports are TCP (a port's proto is tcp or http);
	// nothing asks for UDP.
	for _, p := range jb.Config.Ports {
		spec.Publish = append(spec.Publish, PublishedPort{Port: p.Port, Target: p.Target, Proto: "tcp"})
	}
	spec.ExtraHosts = d.appExtraHosts()
	return spec
}

// supervise runs a started (or adopted) job until it ends: it pumps its
// logs (from since), checks readiness, and records its exit.
func (d *Daemon) supervise(j *job, since time.Time) {
	ctx, cancel := d.lifetime()
	d.mu.Lock()
	id := j.active.ContainerID
	d.mu.Unlock()

	record := d.logSink(j)
	pumpDone := make(chan struct{})
	exited := make(chan struct{}) // closed once Wait has returned
	d.wg.Add(3)
	go func() {
		defer d.wg.Done()
		defer close(pumpDone)
		for delay := 50 * time.Millisecond; ; delay = min(delay*2, 2*time.Second) {
			err := d.backend.Logs(ctx, id, since, record)
			if ctx.Err() != nil {
				return
			}
			select {
			case <-exited:
				if err != nil {
					d.log.Warn("job log stream ended", "job_id", j.id, "err", err)
				}
				return // drained: the container ended
			default:
			}
			// The container runs on, but Docker's follower ended (it does
			// after a flood of output rotates the log file faster than it
			// reads): follow again from the last line recorded.
			if errors.Is(err, ErrLogStalled) {
				d.log.Info("job log stream stalled; following again", "job_id", j.id, "err", err)
			} else {
				d.log.Debug("job log stream ended early; following again", "job_id", j.id, "err", err)
			}
			since = j.log.LastTime()
			select {
			case <-ctx.Done():
				return
			case <-exited:
			case <-time.After(delay):
			}
		}
	}()
	checkCtx, stopChecks := context.WithCancel(ctx)
	d.mu.Lock()
	j.stopChecks = stopChecks
	limit := j.active.Job.Config.Resources.Disk
	d.mu.Unlock()
	if limit > 0 {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.watchDisk(ctx, j, id, limit)
		}()
	}
	go func() {
		defer d.wg.Done()
		d.awaitReady(checkCtx, j)
	}()
	go func() {
		defer d.wg.Done()
		defer cancel()
		code, err := d.backend.Wait(ctx, id)
		close(exited)
		if ctx.Err() != nil {
			stopChecks()
			return // the daemon is closing: the job runs on for the next one
		}
		stopChecks()
		d.deregister(j)
		if err == nil {
			<-pumpDone
		}
		d.finish(j, code, err)
	}()
}

// logSink returns what the log pump does with each line of j: record it
// in the job's log and, for an app's job, ship it to the log aggregator,
// labelled with the app, release, process type, job and node. The pump
// resumes after the last line recorded, so a line is shipped once even
// across flynn-host's restart.
func (d *Daemon) logSink(j *job) func(host.LogLine) error {
	d.mu.Lock()
	meta := j.active.Job.Metadata
	d.mu.Unlock()
	appID := meta[host.MetaAppID]
	if d.cfg.LogShipper == nil || appID == "" {
		return j.log.Write
	}
	tmpl := logaggregator.Line{
		AppID:       appID,
		AppName:     meta[host.MetaAppName],
		ReleaseID:   meta[host.MetaReleaseID],
		ProcessType: meta[host.MetaType],
		JobID:       j.id,
		HostID:      d.cfg.HostID,
	}
	return func(l host.LogLine) error {
		if err := j.log.Write(l); err != nil {
			return err
		}
		line := tmpl
		line.Time, line.Stream, line.Data = l.Time, l.Stream, l.Data
		d.cfg.LogShipper.Ship(line)
		return nil
	}
}

// finish records a job's exit.
func (d *Daemon) finish(j *job, code int, waitErr error) {
	_ = j.log.Finish()
	d.ports.Release(j.id)
	d.mu.Lock()
	a := &j.active
	a.EndedAt = time.Now().UTC()
	switch {
	case waitErr != nil:
		a.State = host.StateFailed
		a.Error = waitErr.Error()
	case j.diskUsed > 0:
		a.State = host.StateFailed
		a.Error = fmt.Sprintf("disk limit exceeded: the job wrote more than %d bytes to its filesystem (limit %d), and was killed",
			j.diskUsed, a.Job.Config.Resources.Disk)
		a.ExitStatus = &code
	case j.stopping || code == 0:
		a.State = host.StateDown
		a.ExitStatus = &code
	default:
		a.State = host.StateCrashed
		a.ExitStatus = &code
	}
	// Counted before done closes, so that whoever waited for the end
	// finds it counted.
	if a.State == host.StateDown {
		d.metrics.stops.Inc()
	} else {
		d.metrics.failures.Inc()
	}
	d.persistLocked(j)
	d.emitLocked(j)
	close(j.done)
	ended := j.snapshot()
	d.mu.Unlock()
	d.cpu.forget(j.id)
	d.log.Info("job ended", "job_id", j.id, "state", a.State, "exit_status", code)
	d.collect()
	if ended.Job.Config.Persistent && (ended.State == host.StateCrashed || ended.State == host.StateFailed) {
		d.reviveCrashed(ended)
	}
}

// StopJob stops a job: it is deregistered from discoverd first, then sent
// SIGTERM, then SIGKILL after its grace period. It returns once the job has
// ended or ctx ends (the stop goes on regardless).
func (d *Daemon) StopJob(ctx context.Context, id string) (*host.ActiveJob, error) {
	d.mu.Lock()
	j, ok := d.jobs[id]
	d.mu.Unlock()
	if !ok {
		return nil, httpjson.NotFound("job %s not found", id)
	}
	if err := d.beginStop(j); err != nil {
		return nil, err
	}
	select {
	case <-j.done:
	case <-ctx.Done():
	}
	// The job itself, not a lookup by id: once it has ended, collection
	// may already have dropped it from the daemon's table.
	d.mu.Lock()
	defer d.mu.Unlock()
	return j.snapshot(), nil
}

// StopAll stops every job the daemon runs, as StopJob does, all at once,
// and returns when they have ended or ctx ends: `flynn-host daemon
// --stop-jobs` does it on shutdown, for an operator who takes the node
// out of service rather than restarting the daemon. It reports how many
// jobs it stopped and how many had not ended when ctx did.
func (d *Daemon) StopAll(ctx context.Context) (stopped, left int) {
	d.mu.Lock()
	jobs := make([]*job, 0, len(d.jobs))
	for _, j := range d.jobs {
		if !j.active.State.Terminal() {
			jobs = append(jobs, j)
		}
	}
	d.mu.Unlock()
	for _, j := range jobs {
		if err := d.beginStop(j); err != nil {
			d.log.Warn("stop job on shutdown", "job_id", j.id, "err", err)
		}
	}
	for _, j := range jobs {
		select {
		case <-j.done:
			stopped++
		case <-ctx.Done():
			left++
		}
	}
	return stopped, left
}

// beginStop starts the stop sequence once; later calls are no-ops.
func (d *Daemon) beginStop(j *job) error {
	d.mu.Lock()
	if j.stopping || j.active.State.Terminal() {
		d.mu.Unlock()
		return nil
	}
	if j.active.State == host.StatePending {
		d.mu.Unlock()
		return httpjson.Errorf(httpjson.CodeConflict, "job %s is still being created", j.id)
	}
	j.stopping = true
	j.active.State = host.StateStopping
	d.persistLocked(j)
	d.emitLocked(j)
	d.mu.Unlock()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.terminate(j)
	}()
	return nil
}

// terminate is the stop sequence, owned by the daemon so that it completes
// even when the client that asked for it goes away.
func (d *Daemon) terminate(j *job) {
	ctx, cancel := d.lifetime()
	defer cancel()
	d.mu.Lock()
	if j.stopChecks != nil {
		j.stopChecks()
	}
	id, grace := j.active.ContainerID, j.active.Job.Config.Grace()
	d.mu.Unlock()
	d.deregister(j)
	if err := d.backend.Signal(ctx, id, "SIGTERM"); err != nil {
		d.log.Warn("send SIGTERM", "job_id", j.id, "err", err)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-j.done:
		return
	case <-ctx.Done():
		return
	case <-t.C:
	}
	d.log.Info("grace period over, killing job", "job_id", j.id, "grace", grace)
	if err := d.backend.Signal(ctx, id, "SIGKILL"); err != nil {
		d.log.Warn("send SIGKILL", "job_id", j.id, "err", err)
	}
}

// SignalJob sends a signal to a running job.
func (d *Daemon) SignalJob(ctx context.Context, id, signal string) error {
	sig, err := ParseSignal(signal)
	if err != nil {
		return httpjson.ValidationError("signal", "%v", err)
	}
	d.mu.Lock()
	j, ok := d.jobs[id]
	var cid string
	var state host.JobState
	if ok {
		cid, state = j.active.ContainerID, j.active.State
	}
	d.mu.Unlock()
	if !ok {
		return httpjson.NotFound("job %s not found", id)
	}
	if state.Terminal() || state == host.StatePending {
		return httpjson.Errorf(httpjson.CodeConflict, "job %s is %s", id, state)
	}
	if err := d.backend.Signal(ctx, cid, sig); err != nil {
		return fmt.Errorf("signal job %s: %w", id, err)
	}
	return nil
}

var signalNames = map[string]bool{
	"SIGHUP": true, "SIGINT": true, "SIGQUIT": true, "SIGKILL": true, "SIGUSR1": true, "SIGUSR2": true,
	"SIGTERM": true, "SIGSTOP": true, "SIGCONT": true, "SIGWINCH": true, "SIGALRM": true, "SIGPIPE": true,
	"SIGABRT": true, "SIGTSTP": true,
}

// ParseSignal accepts a signal name ("TERM", "SIGTERM") or number (1-31)
// and returns the form the backend takes.
func ParseSignal(s string) (string, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 31 {
			return "", fmt.Errorf("signal number %d out of range 1-31", n)
		}
		return s, nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if !signalNames[name] {
		return "", fmt.Errorf("unknown signal %q", s)
	}
	return name, nil
}

// LogOptions select a job's log lines.
type LogOptions = logbuf.ReadOptions

// ReadLog calls fn with the job's log lines; with Follow it returns when the
// job has ended and its output is read, or ctx ends.
func (d *Daemon) ReadLog(ctx context.Context, id string, opts LogOptions, fn func(host.LogLine) error) error {
	d.mu.Lock()
	j, ok := d.jobs[id]
	d.mu.Unlock()
	if !ok || j.log == nil {
		return httpjson.NotFound("job %s not found", id)
	}
	return j.log.Read(ctx, opts, fn)
}

// collect removes the oldest finished jobs beyond MaxFinished, with their
// containers, logs and records.
func (d *Daemon) collect() {
	d.mu.Lock()
	var finished []*job
	for _, j := range d.jobs {
		if j.active.State.Terminal() {
			finished = append(finished, j)
		}
	}
	if len(finished) <= d.cfg.MaxFinished {
		d.mu.Unlock()
		return
	}
	sort.Slice(finished, func(a, b int) bool { return finished[a].active.EndedAt.Before(finished[b].active.EndedAt) })
	victims := finished[:len(finished)-d.cfg.MaxFinished]
	for _, j := range victims {
		delete(d.jobs, j.id)
	}
	d.mu.Unlock()
	for _, j := range victims {
		d.cpu.forget(j.id)
		if j.active.ContainerID != "" {
			d.removeContainer(j.active.ContainerID)
		}
		if j.log != nil {
			_ = j.log.Remove()
		} else {
			_ = os.RemoveAll(filepath.Join(logsDir(d.cfg.StateDir), j.id))
		}
		_ = os.Remove(jobFile(d.cfg.StateDir, j.id))
	}
}

func (d *Daemon) removeContainer(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.backend.Remove(ctx, id); err != nil {
		d.log.Warn("remove container", "container_id", short(id), "err", err)
	}
}

func cloneJob(jb *host.Job) *host.Job {
	b, _ := json.Marshal(jb)
	var c host.Job
	_ = json.Unmarshal(b, &c)
	return &c
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
