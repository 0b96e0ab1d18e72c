package daemon

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/host"
)

// awaitReady waits until every service port of the job accepts connections
// (a TCP connect, or an HTTP GET of the port's CheckPath answering below
// 500), registers those ports in discoverd, and marks the job up. A job
// without service ports is up as soon as it runs. It gives up when ctx ends
// (the job exited or is stopping).
//
// An app job's ports are checked at its own address on the app network:
// its published port on the node's address is Docker's proxy, which
// accepts connections before the app listens. It is registered at the
// node's address all the same, which is what routers dial: the published
// port, whatever port (Target) the job listens on inside.
func (d *Daemon) awaitReady(ctx context.Context, j *job) {
	d.mu.Lock()
	jb, cid := j.active.Job, j.active.ContainerID
	d.mu.Unlock()
	var checks []host.Port
	for _, p := range jb.Config.Ports {
		if p.Service != "" {
			checks = append(checks, p)
		}
	}
	checkIP, inside := d.cfg.ExternalIP, false
	if bridged(jb) && len(checks) > 0 {
		ip, ok := d.waitContainerIP(ctx, j.id, cid)
		if !ok {
			return
		}
		// No address: the container is on the host network after all (one
		// started before app jobs had a network of their own, adopted).
		if ip != "" {
			checkIP, inside = ip, true
		}
	}
	for _, p := range checks {
		// At the job's own address the process's port (a target, say),
		// at the node's the published one.
		port := p.Port
		if inside {
			port = p.ContainerPort()
		}
		if !d.waitPort(ctx, net.JoinHostPort(checkIP, strconv.Itoa(port)), p.CheckPath) {
			return
		}
	}
	var regs []Registration
	if d.registrar != nil {
		for _, p := range checks {
			inst := &discoverd.Instance{
				Addr:  net.JoinHostPort(d.cfg.ExternalIP, strconv.Itoa(p.Port)),
				Proto: p.Proto,
				Meta:  map[string]string{"job_id": j.id, "host_id": d.cfg.HostID},
			}
			if inst.Proto == "" {
				inst.Proto = "tcp"
			}
			for k, v := range jb.Metadata {
				inst.Meta[k] = v
			}
			// The registration heartbeats until ctx ends, which is when the
			// job stops or exits, right before it is deregistered. A job is
			// up only once registered, so a discoverd that does not answer
			// yet (it starts beside the first jobs) is tried again.
			reg, ok := d.registerJob(ctx, j.id, p.Service, inst)
			if !ok {
				deregisterAll(regs)
				return
			}
			regs = append(regs, reg)
		}
	}
	d.mu.Lock()
	if ctx.Err() != nil || j.active.State != host.StateStarting {
		d.mu.Unlock()
		// Stopped or exited meanwhile: undo what the stop path can no longer see.
		deregisterAll(regs)
		return
	}
	j.regs = regs
	j.active.State = host.StateUp
	d.persistLocked(j)
	d.emitLocked(j)
	d.mu.Unlock()
	d.log.Info("job up", "job_id", j.id)
}

// registerJob registers inst in service, trying again with a growing delay
// until it succeeds or ctx ends.
func (d *Daemon) registerJob(ctx context.Context, jobID, service string, inst *discoverd.Instance) (Registration, bool) {
	for delay := 100 * time.Millisecond; ; delay = min(delay*2, 5*time.Second) {
		reg, err := d.registrar.Register(ctx, service, inst)
		if err == nil {
			return reg, true
		}
		if ctx.Err() != nil {
			return nil, false
		}
		d.log.Warn("register job in discoverd; trying again", "job_id", jobID, "service", service, "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return nil, false
		case <-time.After(delay):
		}
	}
}

// waitContainerIP asks the backend for a bridged container's address
// until it answers or ctx ends.
func (d *Daemon) waitContainerIP(ctx context.Context, jobID, cid string) (string, bool) {
	interval := d.cfg.CheckInterval
	for {
		ip, err := d.backend.ContainerIP(ctx, cid)
		if err == nil {
			return ip, true
		}
		if ctx.Err() == nil {
			d.log.Debug("container address", "job_id", jobID, "err", err)
		}
		select {
		case <-ctx.Done():
			return "", false
		case <-time.After(interval):
		}
		interval = min(interval*3/2, time.Second)
	}
}

// waitPort polls addr until it answers (an HTTP GET of checkPath when
// set) or ctx ends.
func (d *Daemon) waitPort(ctx context.Context, addr, checkPath string) bool {
	client := &http.Client{Timeout: time.Second}
	interval := d.cfg.CheckInterval
	for {
		if d.portReady(ctx, client, addr, checkPath) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(interval):
		}
		interval = min(interval*3/2, time.Second)
	}
}

func (d *Daemon) portReady(ctx context.Context, client *http.Client, addr, path string) bool {
	if path == "" {
		dialer := net.Dialer{Timeout: time.Second}
		conn, err := dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			return false
		}
		_ = conn.Close()
		return true
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode < 500
}

// deregister removes the job's discoverd registrations, before it is
// signalled, so routers stop sending to it first.
func (d *Daemon) deregister(j *job) {
	d.mu.Lock()
	regs := j.regs
	j.regs = nil
	d.mu.Unlock()
	deregisterAll(regs)
}

func deregisterAll(regs []Registration) {
	for _, r := range regs {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = r.Deregister(ctx)
		cancel()
	}
}
