package images

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// Docker is the Engine of a real Docker daemon.
type Docker struct {
	client *client.Client
}

var (
	_ Engine = (*Docker)(nil)
	_ Tagger = (*Docker)(nil)
)

// NewDocker connects to the daemon named by the environment (DOCKER_HOST,
// or the default socket), negotiating the API version since the engine here
// is older than the client library.
func NewDocker() (*Docker, error) {
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return &Docker{client: c}, nil
}

// Client returns the underlying Docker client.
func (d *Docker) Client() *client.Client { return d.client }

// Close releases the client's connections.
func (d *Docker) Close() error { return d.client.Close() }

// ImageID implements Engine.
func (d *Docker) ImageID(ctx context.Context, ref string) (string, error) {
	info, err := d.client.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("inspect image %s: %w", ref, err)
	}
	return info.ID, nil
}

// Import implements Engine.
func (d *Docker) Import(ctx context.Context, rootfs io.Reader, changes []string, refs ...string) (string, error) {
	if len(refs) == 0 {
		return "", errors.New("import: no image reference")
	}
	body, err := d.client.ImageImport(ctx, image.ImportSource{Source: rootfs, SourceName: "-"}, refs[0], image.ImportOptions{Changes: changes})
	if err != nil {
		return "", fmt.Errorf("import %s: %w", refs[0], err)
	}
	if err := readProgress(body); err != nil {
		return "", fmt.Errorf("import %s: %w", refs[0], err)
	}
	return d.tagAll(ctx, refs)
}

// Build implements Engine with the classic builder: it needs no BuildKit
// and, with PullParent unset, never contacts a registry. Its RUN steps
// (apt) use the host's network, and so reach the apt sources as the host
// does, through its /etc/hosts and resolver.
func (d *Docker) Build(ctx context.Context, buildContext io.Reader, refs ...string) (string, error) {
	if len(refs) == 0 {
		return "", errors.New("build: no image reference")
	}
	resp, err := d.client.ImageBuild(ctx, buildContext, build.ImageBuildOptions{
		Tags:        refs,
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1,
		NetworkMode: "host",
	})
	if err != nil {
		return "", fmt.Errorf("build %s: %w", refs[0], err)
	}
	if err := readProgress(resp.Body); err != nil {
		return "", fmt.Errorf("build %s: %w", refs[0], err)
	}
	return d.tagAll(ctx, refs)
}

// Tag implements Tagger.
func (d *Docker) Tag(ctx context.Context, source, target string) error {
	if err := d.client.ImageTag(ctx, source, target); err != nil {
		return fmt.Errorf("tag %s as %s: %w", source, target, err)
	}
	return nil
}

// tagAll makes sure every ref names the image of refs[0] and returns its id.
func (d *Docker) tagAll(ctx context.Context, refs []string) (string, error) {
	id, err := d.ImageID(ctx, refs[0])
	if err != nil {
		return "", err
	}
	if id == "" {
		return "", fmt.Errorf("image %s missing after it was made", refs[0])
	}
	for _, ref := range refs[1:] {
		if err := d.Tag(ctx, refs[0], ref); err != nil {
			return "", err
		}
	}
	return id, nil
}

// readProgress drains a daemon's JSON message stream and returns the error
// it reports, with the last lines of build output for context.
func readProgress(body io.ReadCloser) error {
	defer body.Close()
	dec := json.NewDecoder(body)
	var tail []string
	for {
		var msg struct {
			Stream string `json:"stream"`
			Error  string `json:"error"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("read daemon progress: %w", err)
		}
		if msg.Stream != "" {
			tail = append(tail, strings.TrimRight(msg.Stream, "\n"))
			if len(tail) > 10 {
				tail = tail[1:]
			}
		}
		if msg.Error != "" {
			return fmt.Errorf("%s\n%s", msg.Error, strings.Join(tail, "\n"))
		}
	}
}
