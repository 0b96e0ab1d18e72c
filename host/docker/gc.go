package docker

import (
	"context"
	"fmt"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"

	"github.com/openflynn/flynn/host/gc"
)

var _ gc.Engine = (*Backend)(nil)

// Containers lists every container of the engine for the garbage
// collector, with when the exited ones ended (an inspect each).
func (b *Backend) Containers(ctx context.Context) ([]gc.Container, error) {
	list, err := b.c.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]gc.Container, 0, len(list))
	for _, s := range list {
		c := gc.Container{ID: s.ID, Image: s.Image, ImageID: s.ImageID, Labels: s.Labels, State: s.State}
		if len(s.Names) > 0 {
			c.Name = strings.TrimPrefix(s.Names[0], "/")
		}
		if s.State == "exited" || s.State == "dead" {
			info, err := b.c.ContainerInspect(ctx, s.ID)
			if cerrdefs.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("inspect container: %w", err)
			}
			if info.State != nil {
				c.FinishedAt, _ = time.Parse(time.RFC3339Nano, info.State.FinishedAt)
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// Images lists the engine's images (not the intermediate ones of
// builds) for the garbage collector, each inspected for its layers.
func (b *Backend) Images(ctx context.Context) ([]gc.Image, error) {
	list, err := b.c.ImageList(ctx, image.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]gc.Image, 0, len(list))
	for _, s := range list {
		img := gc.Image{ID: s.ID, Labels: s.Labels, Created: time.Unix(s.Created, 0).UTC(), Size: s.Size, ParentID: s.ParentID}
		for _, t := range s.RepoTags {
			if t != "<none>:<none>" {
				img.Tags = append(img.Tags, t)
			}
		}
		info, err := b.c.ImageInspect(ctx, s.ID)
		if cerrdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("inspect image %s: %w", s.ID, err)
		}
		img.Layers = info.RootFS.Layers
		out = append(out, img)
	}
	return out, nil
}

// RemoveContainer removes a container that does not run; Docker refuses
// one that does. A container already gone is no error.
func (b *Backend) RemoveContainer(ctx context.Context, id string) error {
	b.mu.Lock()
	delete(b.layers, id)
	b.mu.Unlock()
	if err := b.c.ContainerRemove(ctx, id, container.RemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove container: %w", err)
	}
	return nil
}
