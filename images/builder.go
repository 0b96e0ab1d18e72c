package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"golang.org/x/sync/errgroup"
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
	// Parallel is how many images build at once; default DefaultParallel.
	// An image waits only for its parent, so the Debian roots, which take
	// minutes each and mostly wait on downloads and dpkg, overlap.
	Parallel int
	// ProgressEvery is how often a build that is still running says so,
	// with its time so far and its estimate; default 15s.
	ProgressEvery time.Duration
	// Estimates are how long each image (by Name) took to build last time
	// on this machine; Build fills in what it builds (BuildTimes).
	Estimates BuildTimes
	// Later names images (by Key) that are not built in this run: one that
	// exists already is in the manifest, one that does not is left out,
	// and so are its children (Later too). The first cluster of a machine
	// starts on the default stack's images while the others wait.
	Later map[string]bool
}

// DefaultParallel is Builder.Parallel's default: with 2 cores, three
// mmdebstraps at once keep both busy, as each waits on the network and the
// disk much of its time.
const DefaultParallel = 3

// Build builds imgs (a From must name an earlier image), each as soon as
// its parent is there, and returns the manifest of what exists afterwards.
// Optional images whose files are missing, and Later images that do not
// exist yet, are skipped and left out of the manifest. The first failure
// cancels the builds still running.
func (b *Builder) Build(ctx context.Context, imgs []Image) (Manifest, error) {
	parallel := b.Parallel
	if parallel <= 0 {
		parallel = DefaultParallel
	}
	every := b.ProgressEvery
	if every <= 0 {
		every = 15 * time.Second
	}
	if b.Estimates == nil {
		b.Estimates = BuildTimes{}
	}
	// Every image's result is published by closing its done channel.
	type result struct {
		built   Built
		skipped bool
		done    chan struct{}
	}
	results := make(map[string]*result, len(imgs))
	for _, img := range imgs {
		if img.Debian != nil && img.From != "" {
			return nil, fmt.Errorf("image %s: both Debian and From are set", img.Name)
		}
		if img.Debian != nil && len(img.Packages)+len(img.Commands)+len(img.Files) > 0 {
			return nil, fmt.Errorf("image %s: a Debian root lists its packages in Debian and takes no Commands or Files (add them in an image From it)", img.Name)
		}
		if img.Debian == nil && img.From == "" {
			return nil, fmt.Errorf("image %s: neither Debian nor From is set", img.Name)
		}
		if img.From != "" && results[img.From] == nil {
			return nil, fmt.Errorf("image %s: parent image %q was not built before it", img.Name, img.From)
		}
		results[img.Key] = &result{done: make(chan struct{})}
	}
	// The group's context ends at the first failure, which stops the builds
	// still running and those waiting on a parent or a slot. The slots are
	// a semaphore of their own rather than the group's limit because an
	// image waiting on its parent must not hold one.
	g, gctx := errgroup.WithContext(ctx)
	progress := newProgress(b.Log, b.Estimates)
	stopProgress := progress.report(every)
	defer stopProgress()
	slots := make(chan struct{}, parallel)
	for _, img := range imgs {
		res := results[img.Key]
		g.Go(func() error {
			defer close(res.done)
			log := b.Log.With("image", img.Name)
			if missing := missingFile(img); missing != "" {
				if img.Optional {
					log.Warn("skipped: file not built yet", "file", missing)
					res.skipped = true
					return nil
				}
				return fmt.Errorf("image %s: %s does not exist", img.Name, missing)
			}
			var parent Built
			if img.From != "" {
				p := results[img.From]
				select {
				case <-p.done:
				case <-gctx.Done():
					return nil
				}
				if p.built.Ref == "" {
					// Failed (reported as such) or skipped: a Later
					// image's children wait with it.
					res.skipped = p.skipped && b.Later[img.Key]
					return nil
				}
				parent = p.built
			}
			if b.Later[img.Key] {
				tag, err := contentTag(img, parent)
				if err != nil {
					return fmt.Errorf("image %s: %w", img.Name, err)
				}
				built, ok, err := b.existing(gctx, img.Name+":"+tag, img.Name)
				if err != nil {
					return fmt.Errorf("image %s: %w", img.Name, err)
				}
				if !ok {
					log.Info("left for later: not built yet")
					res.skipped = true
					return nil
				}
				res.built = built
				log.Info("up to date", "ref", built.Ref)
				return nil
			}
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
			case <-gctx.Done():
				return nil
			}
			start := time.Now()
			built, did, err := b.build(gctx, img, parent, progress)
			if err != nil {
				return fmt.Errorf("image %s: %w", img.Name, err)
			}
			res.built = built
			if did {
				took := time.Since(start)
				progress.finished(img.Name, took)
				log.Info("built", "ref", built.Ref, "id", built.ID, "duration", took.Round(time.Millisecond))
			} else {
				log.Info("up to date", "ref", built.Ref)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	m := Manifest{}
	for _, img := range imgs {
		res := results[img.Key]
		switch {
		case res.built.Ref != "":
			m[img.Key] = res.built
		case !res.skipped:
			return nil, fmt.Errorf("image %s: parent image %q was skipped: its files are not built", img.Name, img.From)
		}
	}
	return m, nil
}

// build returns img, building what is missing; did reports whether anything
// was built.
func (b *Builder) build(ctx context.Context, img Image, parent Built, progress *progress) (Built, bool, error) {
	tag, err := contentTag(img, parent)
	if err != nil {
		return Built{}, false, err
	}
	ref := img.Name + ":" + tag
	if built, ok, err := b.existing(ctx, ref, img.Name); ok || err != nil {
		return built, false, err
	}
	if img.Debian != nil {
		return b.root(ctx, img, tag, progress)
	}
	typical := typicalLayerBuild
	if len(img.Packages) > 0 {
		typical = typicalPackagesBuild
	}
	defer progress.building(img.Name, typical)()
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

// contentTag is img's tag: a root's from its definition, a layer's from
// its definition and its parent's id.
func contentTag(img Image, parent Built) (string, error) {
	if img.Debian != nil {
		return rootTag(img), nil
	}
	return layerTag(img, parent.ID)
}

// root imports the Debian root image tagged tag.
func (b *Builder) root(ctx context.Context, img Image, tag string, progress *progress) (Built, bool, error) {
	ref := img.Name + ":" + tag
	defer progress.building(img.Name, typicalRootBuild)()
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		err := b.RootFS.WriteRootFS(ctx, *img.Debian, pw)
		pw.CloseWithError(err)
		errc <- err
	}()
	id, err := b.Engine.Import(ctx, pr, configChanges(img, map[string]string{LabelName: img.Name, LabelContent: tag}), ref, img.Name+":latest")
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
