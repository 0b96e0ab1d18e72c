package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/pkg/jsonmessage"

	"github.com/openflynn/flynn/host/daemon"
)

var _ daemon.ImageBuilder = (*Backend)(nil)

// maxBuildLine is the longest line of build output passed on whole; a
// longer one is cut into lines of this length.
const maxBuildLine = 64 << 10

// BuildImage runs spec with Docker's classic builder (BuildKit would need
// a session and pulls its frontend), pulling nothing it has (PullParent
// false) and with no registry credentials, removing its intermediate
// containers whether it succeeds or not. Docker's stream is turned into
// lines without ANSI escapes.
func (b *Backend) BuildImage(ctx context.Context, spec *daemon.BuildSpec, line func(string) error) error {
	resp, err := b.c.ImageBuild(ctx, spec.Context, build.ImageBuildOptions{
		Version:     build.BuilderV1,
		Tags:        []string{spec.Tag},
		Dockerfile:  spec.Dockerfile,
		Labels:      spec.Labels,
		NetworkMode: spec.Network,
		Memory:      spec.Memory,
		MemorySwap:  spec.Memory,
		CPUShares:   spec.CPUShares,
		PullParent:  false,
		Remove:      true,
		ForceRemove: true,
	})
	if err != nil {
		return fmt.Errorf("docker build: %w", err)
	}
	defer resp.Body.Close()
	lw := &lineWriter{fn: line}
	dec := json.NewDecoder(resp.Body)
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("docker build: read its output: %w", err)
		}
		if m.Error != nil {
			if err := lw.flush(); err != nil {
				return err
			}
			return fmt.Errorf("%w: %s", daemon.ErrBuildFailed, stripANSI(strings.TrimSpace(m.Error.Message)))
		}
		text := m.Stream
		if text == "" && m.Status != "" {
			text = m.Status + "\n"
		}
		if err := lw.write(text); err != nil {
			return err
		}
	}
	if err := lw.flush(); err != nil {
		return err
	}
	return ctx.Err()
}

// ansi matches terminal escape sequences (colours, cursor moves).
var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]`)

func stripANSI(s string) string { return ansi.ReplaceAllString(s, "") }

// lineWriter cuts a build's text into lines.
type lineWriter struct {
	fn  func(string) error
	buf strings.Builder
}

func (w *lineWriter) write(s string) error {
	for s != "" {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			w.buf.WriteString(s)
			if w.buf.Len() >= maxBuildLine {
				return w.flush()
			}
			return nil
		}
		w.buf.WriteString(s[:i])
		s = s[i+1:]
		if err := w.flush(); err != nil {
			return err
		}
	}
	return nil
}

// flush passes on the line so far, unless it is blank.
func (w *lineWriter) flush() error {
	l := strings.TrimRight(stripANSI(w.buf.String()), " \t")
	w.buf.Reset()
	if strings.TrimSpace(l) == "" {
		return nil
	}
	return w.fn(l)
}

// SaveImage writes ref as `docker save` does.
func (b *Backend) SaveImage(ctx context.Context, ref string, w io.Writer) error {
	rc, err := b.c.ImageSave(ctx, []string{ref})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return fmt.Errorf("%w: %s", daemon.ErrImageNotFound, ref)
		}
		return fmt.Errorf("docker save: %w", err)
	}
	defer rc.Close()
	if _, err := io.Copy(w, rc); err != nil {
		return fmt.Errorf("docker save: %w", err)
	}
	return nil
}

// RemoveImage removes the name ref, and the image and its untagged
// parents (a classic build's intermediate images) when nothing else
// names or uses them.
func (b *Backend) RemoveImage(ctx context.Context, ref string) error {
	if _, err := b.c.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true}); err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("docker rmi %s: %w", ref, err)
	}
	return nil
}
