package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"time"
)

// Engine is the part of a Docker engine the builder needs.
type Engine interface {
	// ImageID returns the id of ref, or "" when there is no such image.
	ImageID(ctx context.Context, ref string) (string, error)
	// Import makes an image from a root filesystem tar, applies the
	// Dockerfile-style config changes and tags it with every ref.
	Import(ctx context.Context, rootfs io.Reader, changes []string, refs ...string) (string, error)
	// Build runs a docker build of the context tar and tags the result with
	// every ref.
	Build(ctx context.Context, buildContext io.Reader, refs ...string) (string, error)
}

// RootFS writes a Debian root filesystem as a tar stream.
type RootFS interface {
	WriteRootFS(ctx context.Context, d Debian, w io.Writer) error
}

// Builder builds images, skipping every one whose content tag exists.
type Builder struct {
	Engine Engine
	RootFS RootFS
	Log    *slog.Logger
}

// Build builds imgs in order (a From must name an earlier image) and returns
// the manifest of what exists afterwards. Optional images whose files are
// missing are skipped and left out of the manifest.
func (b *Builder) Build(ctx context.Context, imgs []Image) (Manifest, error) {
	m := Manifest{}
	for _, img := range imgs {
		log := b.Log.With("image", img.Name)
		if missing := missingFile(img); missing != "" {
			if img.Optional {
				log.Warn("skipped: file not built yet", "file", missing)
				continue
			}
			return nil, fmt.Errorf("image %s: %s does not exist", img.Name, missing)
		}
		start := time.Now()
		built, did, err := b.build(ctx, img, m)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Name, err)
		}
		m[img.Key] = built
		if did {
			log.Info("built", "ref", built.Ref, "id", built.ID, "duration", time.Since(start).Round(time.Millisecond))
		} else {
			log.Info("up to date", "ref", built.Ref)
		}
	}
	return m, nil
}

// build returns img, building what is missing; did reports whether anything
// was built.
func (b *Builder) build(ctx context.Context, img Image, done Manifest) (built Built, did bool, err error) {
	var parent Built
	switch {
	case img.Debian != nil && img.From != "":
		return Built{}, false, errors.New("both Debian and From are set")
	case img.Debian != nil:
		var rootImg Image = img
		tag := rootTag(img)
		if len(img.Files) > 0 {
			// The root is cached under its own tag so that a change of
			// the files does not run mmdebstrap again.
			rootImg = Image{Key: img.Key, Name: img.Name, Debian: img.Debian}
			tag = "root-" + rootTag(rootImg)
		}
		parent, did, err = b.root(ctx, rootImg, img.Name+":"+tag, len(img.Files) == 0)
		if err != nil || len(img.Files) == 0 {
			return parent, did, err
		}
	default:
		var ok bool
		if parent, ok = done[img.From]; !ok {
			return Built{}, false, fmt.Errorf("parent image %q was not built before it", img.From)
		}
	}
	tag, err := layerTag(img, parent.ID)
	if err != nil {
		return Built{}, false, err
	}
	ref := img.Name + ":" + tag
	if built, ok, err := b.existing(ctx, ref, img.Name); ok || err != nil {
		return built, did, err
	}
	labels := map[string]string{LabelName: img.Name, LabelContent: tag}
	pr, pw := io.Pipe()
	written := make(chan struct{})
	go func() {
		defer close(written)
		pw.CloseWithError(writeContext(pw, img, parent.Ref, labels))
	}()
	id, err := b.Engine.Build(ctx, pr, ref, img.Name+":latest")
	// Closing the reader unblocks the writer if Build stopped reading early.
	pr.CloseWithError(errors.New("build ended"))
	<-written
	if err != nil {
		return Built{}, false, err
	}
	return Built{Ref: ref, ID: id}, true, nil
}

// root returns the Debian root image ref, importing it when missing;
// latest says whether it also becomes name:latest.
func (b *Builder) root(ctx context.Context, img Image, ref string, latest bool) (Built, bool, error) {
	latestName := ""
	if latest {
		latestName = img.Name
	}
	if built, ok, err := b.existing(ctx, ref, latestName); ok || err != nil {
		return built, false, err
	}
	tag := ref[strings.LastIndex(ref, ":")+1:]
	refs := []string{ref}
	if latest {
		refs = append(refs, img.Name+":latest")
	}
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		err := b.RootFS.WriteRootFS(ctx, *img.Debian, pw)
		pw.CloseWithError(err)
		errc <- err
	}()
	id, err := b.Engine.Import(ctx, pr, configChanges(img, map[string]string{LabelName: img.Name, LabelContent: tag}), refs...)
	if err != nil {
		cancel()
		pr.CloseWithError(err)
		if rerr := <-errc; rerr != nil {
			return Built{}, false, fmt.Errorf("%w (root filesystem: %v)", err, rerr)
		}
		return Built{}, false, err
	}
	if err := <-errc; err != nil {
		return Built{}, false, fmt.Errorf("root filesystem: %w", err)
	}
	return Built{Ref: ref, ID: id}, true, nil
}

// existing looks ref up; when it exists and latestName is set, it also makes
// sure latestName:latest points at it (cheap, and keeps :latest honest when
// a build went back to an older tag).
func (b *Builder) existing(ctx context.Context, ref, latestName string) (Built, bool, error) {
	id, err := b.Engine.ImageID(ctx, ref)
	if err != nil || id == "" {
		return Built{}, false, err
	}
	if latestName != "" {
		latestID, err := b.Engine.ImageID(ctx, latestName+":latest")
		if err != nil {
			return Built{}, false, err
		}
		if latestID != id {
			if tagger, ok := b.Engine.(Tagger); ok {
				if err := tagger.Tag(ctx, ref, latestName+":latest"); err != nil {
					return Built{}, false, err
				}
			}
		}
	}
	return Built{Ref: ref, ID: id}, true, nil
}

// Tagger is an optional Engine capability: moving a tag to an existing image.
type Tagger interface {
	Tag(ctx context.Context, source, target string) error
}

// missingFile returns the first File source of img that does not exist.
func missingFile(img Image) string {
	for _, f := range img.Files {
		if _, err := os.Lstat(f.Source); errors.Is(err, fs.ErrNotExist) {
			return f.Source
		}
	}
	return ""
}
