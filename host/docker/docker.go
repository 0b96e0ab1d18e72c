// Package docker runs flynn-host jobs as Docker containers: the daemon's
// Backend on github.com/docker/docker/client.
//
// Every container has all capabilities dropped but those the daemon's spec
// keeps, no-new-privileges, and a bounded json-file log (the daemon keeps
// its own copy of the output under its state directory). A container runs
// on the host network unless its spec names a network; there its ports are
// published on the spec's address, host port = container port unless the
// port has a target. Images come from the node, or from archives the
// daemon fetches (LoadImage: `docker load`).
package docker

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"

	"github.com/openflynn/flynn/host/daemon"
)

// logConfig bounds a container's json-file log at two files of 8 MiB.
// Two, not one: with one file Docker truncates it in place, and Docker
// 20.10's follower (Debian 12's) then hangs for good once a flood of output
// truncates it under the reader, so the job's log would end there; a
// rotation by rename it follows.
func logConfig() container.LogConfig {
	return container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "8m", "max-file": "2"}}
}

// Backend is the Docker implementation of daemon.Backend and daemon.Attacher.
type Backend struct {
	c *client.Client

	mu     sync.Mutex
	layers map[string]string // container id → its writable layer's directory, once known
}

var (
	_ daemon.Backend     = (*Backend)(nil)
	_ daemon.Attacher    = (*Backend)(nil)
	_ daemon.ImageLoader = (*Backend)(nil)
)

// New connects to the Docker engine named by the environment (DOCKER_HOST…),
// negotiating the API version (the engine may be older than the client).
func New(ctx context.Context) (*Backend, error) {
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	if _, err := c.Ping(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("docker engine does not answer: %w", err)
	}
	return &Backend{c: c, layers: map[string]string{}}, nil
}

// Client returns the underlying Docker client.
func (b *Backend) Client() *client.Client { return b.c }

// Close closes the client.
func (b *Backend) Close() error { return b.c.Close() }

// Create creates a container from spec.
func (b *Backend) Create(ctx context.Context, spec *daemon.ContainerSpec) (string, error) {
	if _, err := b.c.ImageInspect(ctx, spec.Image); err != nil {
		if cerrdefs.IsNotFound(err) {
			return "", fmt.Errorf("%w: %s", daemon.ErrImageNotFound, spec.Image)
		}
		return "", fmt.Errorf("inspect image %s: %w", spec.Image, err)
	}
	cfg := &container.Config{
		Image:        spec.Image,
		Env:          spec.Env,
		Labels:       spec.Labels,
		WorkingDir:   spec.WorkingDir,
		User:         spec.User,
		Tty:          spec.TTY,
		OpenStdin:    spec.Stdin,
		StdinOnce:    spec.Stdin,
		AttachStdin:  spec.Stdin,
		AttachStdout: true,
		AttachStderr: true,
	}
	if len(spec.Entrypoint) > 0 {
		cfg.Entrypoint = spec.Entrypoint
	}
	if len(spec.Cmd) > 0 {
		cfg.Cmd = spec.Cmd
	}
	hc := &container.HostConfig{
		NetworkMode: "host",
		CapDrop:     []string{"ALL"},
		CapAdd:      spec.CapAdd,
		SecurityOpt: []string{"no-new-privileges"},
		LogConfig:   logConfig(),
		Resources: container.Resources{
			Memory:    spec.Resources.Memory,
			CPUShares: spec.Resources.CPUShares,
		},
	}
	if spec.Network != "" {
		hc.NetworkMode = container.NetworkMode(spec.Network)
		hc.ExtraHosts = spec.ExtraHosts
		hc.Sysctls = spec.Sysctls
		cfg.ExposedPorts = nat.PortSet{}
		hc.PortBindings = nat.PortMap{}
		for _, p := range spec.Publish {
			proto := p.Proto
			if proto == "" {
				proto = "tcp"
			}
			target := p.Target
			if target == 0 {
				target = p.Port
			}
			port := nat.Port(fmt.Sprintf("%d/%s", target, proto))
			cfg.ExposedPorts[port] = struct{}{}
			hc.PortBindings[port] = []nat.PortBinding{{HostIP: spec.PublishIP, HostPort: strconv.Itoa(p.Port)}}
		}
	}
	if spec.Resources.Pids > 0 {
		pids := spec.Resources.Pids
		hc.PidsLimit = &pids
	}
	for _, m := range spec.Binds {
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	resp, err := b.c.ContainerCreate(ctx, cfg, hc, nil, nil, spec.Name)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return "", fmt.Errorf("%w: %s", daemon.ErrImageNotFound, spec.Image)
		}
		return "", fmt.Errorf("create container: %w", err)
	}
	return resp.ID, nil
}

// InspectImage describes the image ref names.
func (b *Backend) InspectImage(ctx context.Context, ref string) (daemon.ImageInfo, error) {
	info, err := b.c.ImageInspect(ctx, ref)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return daemon.ImageInfo{}, fmt.Errorf("%w: %s", daemon.ErrImageNotFound, ref)
		}
		return daemon.ImageInfo{}, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	out := daemon.ImageInfo{ID: info.ID, Tags: info.RepoTags}
	if info.Config != nil {
		out.User = info.Config.User
		out.Labels = info.Config.Labels
	}
	return out, nil
}

// LoadImage loads a `docker save` archive, reading the engine's progress
// to its end: a load that fails says so only there.
func (b *Backend) LoadImage(ctx context.Context, archive io.Reader) error {
	resp, err := b.c.ImageLoad(ctx, archive, client.ImageLoadWithQuiet(true))
	if err != nil {
		return fmt.Errorf("docker load: %w", err)
	}
	defer resp.Body.Close()
	if !resp.JSON {
		_, err := io.Copy(io.Discard, resp.Body)
		return err
	}
	if err := jsonmessage.DisplayJSONMessagesStream(resp.Body, io.Discard, 0, false, nil); err != nil {
		return fmt.Errorf("docker load: %w", err)
	}
	return nil
}

// Start starts a created container.
func (b *Backend) Start(ctx context.Context, id string) error {
	if err := b.c.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		if cerrdefs.IsNotFound(err) {
			return fmt.Errorf("%w: %s", daemon.ErrContainerNotFound, id)
		}
		if msg := err.Error(); strings.Contains(msg, "address already in use") || strings.Contains(msg, "port is already allocated") {
			return fmt.Errorf("%w: %s", daemon.ErrPortInUse, msg)
		}
		return fmt.Errorf("%w: %s", daemon.ErrStartFailed, startMessage(err))
	}
	return nil
}

// startMessage trims the OCI runtime's wrapping down to the part that says
// what was wrong (`exec: "nope": executable file not found in $PATH`).
func startMessage(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "exec: "); i >= 0 {
		return strings.TrimSuffix(msg[i:], ": unknown")
	}
	return msg
}

// Signal sends signal to the container.
func (b *Backend) Signal(ctx context.Context, id, signal string) error {
	if err := b.c.ContainerKill(ctx, id, signal); err != nil {
		if cerrdefs.IsNotFound(err) {
			return fmt.Errorf("%w: %s", daemon.ErrContainerNotFound, id)
		}
		return fmt.Errorf("signal container: %w", err)
	}
	return nil
}

// Wait waits for the container to stop running.
func (b *Backend) Wait(ctx context.Context, id string) (int, error) {
	resC, errC := b.c.ContainerWait(ctx, id, container.WaitConditionNotRunning)
	select {
	case res := <-resC:
		if res.Error != nil && res.Error.Message != "" {
			return int(res.StatusCode), fmt.Errorf("wait container: %s", res.Error.Message)
		}
		return int(res.StatusCode), nil
	case err := <-errC:
		if cerrdefs.IsNotFound(err) {
			return 0, fmt.Errorf("%w: %s", daemon.ErrContainerNotFound, id)
		}
		return 0, fmt.Errorf("wait container: %w", err)
	}
}

// Remove force-removes the container.
func (b *Backend) Remove(ctx context.Context, id string) error {
	b.mu.Lock()
	delete(b.layers, id)
	b.mu.Unlock()
	err := b.c.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove container: %w", err)
	}
	return nil
}

// List returns the containers carrying every label given.
func (b *Backend) List(ctx context.Context, labels map[string]string) ([]daemon.Container, error) {
	args := filters.NewArgs()
	for k, v := range labels {
		args.Add("label", k+"="+v)
	}
	list, err := b.c.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]daemon.Container, 0, len(list))
	for _, s := range list {
		info, err := b.c.ContainerInspect(ctx, s.ID)
		if err != nil {
			if cerrdefs.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("inspect container: %w", err)
		}
		c := daemon.Container{ID: s.ID, Labels: s.Labels}
		if st := info.State; st != nil {
			c.Running = st.Running || st.Restarting || st.Paused
			c.ExitCode = st.ExitCode
			c.StartedAt, _ = time.Parse(time.RFC3339Nano, st.StartedAt)
			c.FinishedAt, _ = time.Parse(time.RFC3339Nano, st.FinishedAt)
		}
		if info.HostConfig != nil {
			c.HostNetwork = info.HostConfig.NetworkMode.IsHost()
		}
		out = append(out, c)
	}
	return out, nil
}

// Attach connects to the container's stdio.
func (b *Backend) Attach(ctx context.Context, id string, withStdin, tty bool, stdout, stderr io.Writer) (io.WriteCloser, <-chan error, func(), error) {
	resp, err := b.c.ContainerAttach(ctx, id, container.AttachOptions{Stream: true, Stdin: withStdin, Stdout: true, Stderr: true})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil, nil, nil, fmt.Errorf("%w: %s", daemon.ErrContainerNotFound, id)
		}
		return nil, nil, nil, fmt.Errorf("attach container: %w", err)
	}
	done := make(chan error, 1)
	go func() {
		var err error
		if tty {
			_, err = io.Copy(stdout, resp.Reader)
		} else {
			_, err = stdcopy.StdCopy(stdout, stderr, resp.Reader)
		}
		done <- err
	}()
	var stdin io.WriteCloser
	if withStdin {
		stdin = &hijackedStdin{w: bufio.NewWriter(resp.Conn), closeWrite: resp.CloseWrite}
	}
	return stdin, done, resp.Close, nil
}

// hijackedStdin writes to the attach connection; Close half-closes it so the
// container sees end of input while its output keeps flowing.
type hijackedStdin struct {
	w          *bufio.Writer
	closeWrite func() error
}

func (s *hijackedStdin) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if err == nil {
		err = s.w.Flush()
	}
	return n, err
}

func (s *hijackedStdin) Close() error { return s.closeWrite() }

// Resize sets a TTY container's terminal size.
func (b *Backend) Resize(ctx context.Context, id string, height, width uint16) error {
	if err := b.c.ContainerResize(ctx, id, container.ResizeOptions{Height: uint(height), Width: uint(width)}); err != nil {
		return fmt.Errorf("resize container: %w", err)
	}
	return nil
}
