package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	dockerclient "github.com/docker/docker/client"
	urfave "github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/cmdline"
	"github.com/openflynn/flynn/slugbuilder"
)

func (r *runner) dockerCommand() *urfave.Command {
	return &urfave.Command{
		Name:  "docker",
		Usage: "deploy Docker images",
		Description: `Example:
   flynn -a redis docker push redis-app --tcp`,
		Subcommands: []*urfave.Command{{
			Name:      "push",
			Usage:     "deploy a Docker image of your machine (a new release)",
			ArgsUsage: "IMAGE",
			Description: `Uploads IMAGE from your Docker engine (as docker save writes it) to the
cluster, which keeps it in its blobstore and loads it on each host before
the host's first job of it, then deploys a release of it with the app's
current env and follows the deployment as env set does. A failed
deployment exits non-zero and leaves the app at its previous release.

The release has one process type, web, which runs the image's entrypoint
and command as they are. It listens on the image's first exposed TCP port
(EXPOSE 6379), which the host publishes on a port of its own, or on $PORT
when the image exposes none. Routes reach it as they reach any web
process: over HTTP, or with --tcp as plain TCP, for a service that is no
HTTP server (Redis, SMTP), reached through a TCP route of its service:
flynn route add tcp --service APP-web.

--procfile FILE replaces the process types with those of FILE, a
Procfile ("TYPE: command" lines), each run with /bin/sh -c; web keeps
the port rule. Jobs run as the image's user unless it is root, never
with privileges.

Example:
   docker build -t redis-app . && flynn -a redis docker push redis-app --tcp
   flynn route add tcp -a redis --service redis-web
   flynn docker push myapp:1.2 --procfile Procfile.flynn`,
			Flags: append(append([]urfave.Flag{
				appFlag(),
				&urfave.StringFlag{Name: "procfile", Usage: "`FILE` of process types (\"TYPE: command\" lines) instead of the image's own command"},
				&urfave.BoolFlag{Name: "tcp", Usage: "the web port is plain TCP, not HTTP (Redis, SMTP, …)"},
			}, deployFlags()...), systemFlags()...),
			Action: r.dockerPush,
		}},
	}
}

// dockerPush is `flynn docker push IMAGE`.
func (r *runner) dockerPush(c *urfave.Context) error {
	if c.NArg() != 1 {
		return usageError(c, "want one IMAGE")
	}
	image := c.Args().First()
	var procfile map[string]string
	if path := c.String("procfile"); path != "" {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("--procfile: %w", err)
		}
		procfile, err = slugbuilder.ParseProcfile(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("--procfile %s: %w", path, err)
		}
		if len(procfile) == 0 {
			return fmt.Errorf("--procfile %s names no process type", path)
		}
	}
	api, app, err := r.changeApp(c)
	if err != nil {
		return err
	}
	ctx := c.Context
	docker, err := localDocker(ctx)
	if err != nil {
		return err
	}
	defer docker.Close()
	info, err := docker.ImageInspect(ctx, image)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return fmt.Errorf("image %s is not in your Docker engine: build or pull it first (`docker images` lists what it has)", image)
		}
		return fmt.Errorf("image %s: %w", image, err)
	}
	save, err := docker.ImageSave(ctx, []string{image})
	if err != nil {
		return fmt.Errorf("docker save %s: %w", image, err)
	}
	defer save.Close()

	fmt.Fprintf(r.env.Stdout, "Uploading image %s (%s unpacked) to %s…\n", image, cmdline.RoundSize(uint64(max(info.Size, 0))), app.Name)
	sent := &progressReader{r: save}
	stopReport := func() {}
	if r.env.Terminal != nil {
		stopReport = sent.report(r.env.Stderr, image)
	}
	art, err := api.UploadImage(ctx, app.ID, sent, -1)
	stopReport()
	if err != nil {
		return fmt.Errorf("upload %s: %w", image, err)
	}
	fmt.Fprintf(r.env.Stdout, "Uploaded %s: artifact %s of image %s.\n", cmdline.RoundSize(uint64(sent.total())), art.ID, art.Meta[controller.ImageMetaID])
	processes, err := controller.ImageProcesses(app.Name, art, procfile, c.Bool("tcp"))
	if err != nil {
		return err
	}
	return r.patchRelease(c, api, app, controller.ReleasePatch{
		ArtifactID: art.ID,
		Processes:  processes,
		Meta:       map[string]string{"docker_image": image},
	})
}

// localDocker connects to the Docker engine the environment names
// (DOCKER_HOST…, as the docker command does) and checks that it answers.
func localDocker(ctx context.Context) (*dockerclient.Client, error) {
	dc, err := dockerclient.NewClientWithOpts(dockerclient.FromEnv, dockerclient.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := dc.Ping(pingCtx); err != nil {
		host := dc.DaemonHost()
		dc.Close()
		return nil, fmt.Errorf("no Docker engine answers at %s (is Docker running, and $DOCKER_HOST right?): %w", host, err)
	}
	return dc, nil
}

// progressReader counts what is read through it; report shows the count
// on a terminal as it grows.
type progressReader struct {
	r  io.Reader
	mu sync.Mutex
	n  int64
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.mu.Lock()
	p.n += int64(n)
	p.mu.Unlock()
	return n, err
}

func (p *progressReader) total() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// report rewrites one line of out with the bytes sent, a few times a
// second, until the returned function ends it.
func (p *progressReader) report(out io.Writer, image string) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprintf(out, "\r%s: %s sent\n", image, cmdline.RoundSize(uint64(p.total())))
				return
			case <-t.C:
				fmt.Fprintf(out, "\r%s: %s sent", image, cmdline.RoundSize(uint64(p.total())))
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			<-finished
		})
	}
}
