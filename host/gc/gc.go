// Package gc is flynn-host's garbage collector: it removes the exited job
// containers of the host beyond a bound and the images it manages that
// nothing uses, so that a node's disk does not fill with what past jobs
// and builds left. The daemon (host/daemon) runs it every Interval, and
// POST /host/gc (`flynn-host gc [--dry-run]`) once.
//
//	Inventory (every container and image of the engine) ─┐
//	Jobs (jobs not ended, images of jobs being created) ─┼─► decide (pure) ─► plan ─► Remover
//	images manifest (bin/images.json)                    ─┘        (a dry run stops at the plan)
//
// The rules, conservative on purpose:
//
// Containers. Only the host's exited job containers are candidates (those
// Owned accepts: on flynn-host, labelled with its host id and a job id;
// the jobs of the other nodes of one machine are their daemons'). A
// container that runs, is being created, or whose job the daemon still
// tracks as not ended is never removed, nor one of the KeepExited most
// recently exited, nor one that exited less than MinAge ago. What goes
// with a removed container: its writable layer (the files the job wrote
// outside its volumes, which stay), Docker's copy of its output, and
// what `docker inspect` said of its end (the OOM-killed flag among it).
// Its output stays in the daemon's job log (until the job record goes,
// after MaxFinished newer jobs) and, for an app's job, in the log
// aggregator.
//
// Images. The collector manages three kinds of names, and never removes an
// image that has any other name (nor any image with none):
//   - platform images, the content tags `make images` gives
//     (<org.openflynn.image label>:<org.openflynn.content label>, and
//     :latest);
//   - loaded image archives, ArchivePrefix (flynn-archive/…): the daemon
//     loads one again from its URL before the next job that needs it
//     (host/daemon's archive.go: a missing image is fetched again, and the
//     controller's image URLs are signed for ten years, their blobs kept
//     as long as the app);
//   - builds the controller never took, BuildPrefix (flynn-build/…) with
//     the build label: the controller saves a build at once, which untags
//     it.
//
// Such an image is kept when any container uses it (running or exited),
// when a job is being created with it, when the images manifest names it,
// when it is the latest build of its platform repository, when it was made
// less than MinAge ago (a deploy may be about to use it), or when an image
// that stays is built on it (the current stack and build images, and the
// root images `make images` caches). A platform image is kept, moreover,
// when no images manifest is known, or when it was made less than
// PlatformGrace ago: a release of an older build may still be rolled back
// to, and nothing fetches a platform image again. Whatever it decides,
// removal never forces: Docker refuses to remove an image a container uses
// and only untags one another image is built on.
package gc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/openflynn/flynn/host"
)

// Defaults of Config.
const (
	DefaultKeepExited    = 100
	DefaultMinAge        = time.Hour
	DefaultPlatformGrace = 24 * time.Hour
	DefaultInterval      = 10 * time.Minute
	DefaultFirstRun      = 5 * time.Minute
	DefaultArchivePrefix = "flynn-archive/"
)

// Inventory lists what the engine holds.
type Inventory interface {
	// Containers returns every container of the engine, whoever made it,
	// with FinishedAt set for the exited ones.
	Containers(ctx context.Context) ([]Container, error)
	// Images returns every image of the engine but the intermediate
	// images of builds.
	Images(ctx context.Context) ([]Image, error)
}

// Remover removes what the collector decided to remove.
type Remover interface {
	// RemoveContainer removes a container that does not run (and fails
	// for one that does).
	RemoveContainer(ctx context.Context, id string) error
	// RemoveImage removes the name ref, and the image when that was its
	// last name and no container uses it, without forcing anything.
	RemoveImage(ctx context.Context, ref string) error
}

// Engine is the container engine the collector works on; host/docker's
// Backend is one.
type Engine interface {
	Inventory
	Remover
}

// Jobs is what the collector asks of the job runner.
type Jobs interface {
	// Unfinished returns the ids of the jobs that have not ended.
	Unfinished() []string
	// HoldImages calls fn with the images (as their jobs name them) of
	// the jobs being created, during which no other job starts being
	// created, and returns fn's error.
	HoldImages(fn func(wanted []string) error) error
}

// Config configures a Collector.
type Config struct {
	// Owned reports whether a container is a job container of this host
	// the collector may remove, and names its job and app ("" when it
	// has none). Required.
	Owned func(labels map[string]string) (jobID, app string, ok bool)
	// KeepExited is how many exited job containers are kept, the most
	// recently exited. Default DefaultKeepExited.
	KeepExited int
	// MinAge is the least age of anything removed: an image made, or a
	// container exited, less than MinAge ago stays. Default DefaultMinAge.
	MinAge time.Duration
	// PlatformGrace is the least age of a platform image removed.
	// Default DefaultPlatformGrace.
	PlatformGrace time.Duration
	// ImagesManifest is the path of the current images manifest
	// (bin/images.json), read at each run. Empty, or unreadable (which is
	// logged): no platform image is removed.
	ImagesManifest string
	// ArchivePrefix is the name prefix of loaded image archives. Default
	// DefaultArchivePrefix.
	ArchivePrefix string
	// BuildPrefix is the name prefix of the host's image builds. Default
	// host.BuildTagPrefix.
	BuildPrefix string
	// ImageScope, when set, limits the collector to the images every name
	// of which starts with it (tests, which must not touch a cluster's
	// images on the same engine). Default: every image.
	ImageScope string
	// Interval is the time between two runs of Run. Default DefaultInterval.
	Interval time.Duration
	// FirstRun is the time from Run's start to its first run. Default
	// DefaultFirstRun.
	FirstRun time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() error {
	if c.Owned == nil {
		return errors.New("gc: Config.Owned is required")
	}
	if c.KeepExited <= 0 {
		c.KeepExited = DefaultKeepExited
	}
	if c.MinAge <= 0 {
		c.MinAge = DefaultMinAge
	}
	if c.PlatformGrace <= 0 {
		c.PlatformGrace = DefaultPlatformGrace
	}
	if c.ArchivePrefix == "" {
		c.ArchivePrefix = DefaultArchivePrefix
	}
	if c.BuildPrefix == "" {
		c.BuildPrefix = host.BuildTagPrefix
	}
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.FirstRun <= 0 {
		c.FirstRun = DefaultFirstRun
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Collector removes the garbage of one host. Its runs take turns.
type Collector struct {
	cfg    Config
	engine Engine
	jobs   Jobs
	log    *slog.Logger

	mu sync.Mutex // held by a run
}

// New returns a collector over engine and jobs.
func New(cfg Config, engine Engine, jobs Jobs, logger *slog.Logger) (*Collector, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	return &Collector{cfg: cfg, engine: engine, jobs: jobs, log: logger.With("component", "gc")}, nil
}

// Run collects FirstRun after it starts and every Interval after that,
// until ctx ends. A failed run is logged; the next one tries again.
func (c *Collector) Run(ctx context.Context) {
	t := time.NewTimer(c.cfg.FirstRun)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := c.Collect(ctx, false); err != nil && ctx.Err() == nil {
			c.log.Warn("garbage collection failed", "err", err)
		}
		t.Reset(c.cfg.Interval)
	}
}

// errWanted keeps an image a job started being created with since the plan.
var errWanted = errors.New("a job is being created with it")

// Collect removes what the rules (see the package documentation) let go,
// and reports every exited job container and managed image with what was
// decided; with dryRun it removes nothing. A removal that fails is
// reported in its entry's Error, not as Collect's error, which is for a
// run that could not decide.
func (c *Collector) Collect(ctx context.Context, dryRun bool) (*host.GCReport, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := snapshot{now: c.cfg.Now(), unfinished: map[string]bool{}}
	var err error
	if s.containers, err = c.engine.Containers(ctx); err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	if s.images, err = c.engine.Images(ctx); err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	if c.cfg.ImagesManifest != "" {
		if s.manifest, err = readManifest(c.cfg.ImagesManifest); err != nil {
			c.log.Warn("no images manifest: platform images are kept", "err", err)
		}
	}
	for _, id := range c.jobs.Unfinished() {
		s.unfinished[id] = true
	}
	_ = c.jobs.HoldImages(func(wanted []string) error {
		s.wanted = slices.Clone(wanted)
		return nil
	})
	p := decide(s, &c.cfg)
	rep := &host.GCReport{DryRun: dryRun, Containers: p.containers, Images: make([]host.GCImage, 0, len(p.images))}
	if !dryRun {
		c.removeContainers(ctx, rep.Containers)
		c.removeImages(ctx, p.images)
	}
	var removed int
	for _, img := range p.images {
		rep.Images = append(rep.Images, img.GCImage)
		if img.Remove && img.Error == "" {
			rep.ImageBytes += img.Size
			removed++
		}
	}
	if !dryRun {
		gone := 0
		for _, ct := range rep.Containers {
			if ct.Remove && ct.Error == "" {
				gone++
			}
		}
		if gone > 0 || removed > 0 {
			c.log.Info("garbage collected", "containers", gone, "images", removed, "image_bytes", rep.ImageBytes)
		}
	}
	return rep, nil
}

// removeContainers removes the containers marked Remove, recording errors.
func (c *Collector) removeContainers(ctx context.Context, list []host.GCContainer) {
	for i := range list {
		ct := &list[i]
		if !ct.Remove {
			continue
		}
		if err := c.engine.RemoveContainer(ctx, ct.ID); err != nil {
			ct.Error = err.Error()
			c.log.Warn("remove exited job container", "container_id", shortID(ct.ID), "job_id", ct.JobID, "err", err)
			continue
		}
		c.log.Info("removed exited job container", "container_id", shortID(ct.ID), "job_id", ct.JobID, "app", ct.App,
			"exited_at", ct.ExitedAt, "reason", ct.Reason)
	}
}

// removeImages removes the images marked Remove, in order (an image
// before those it is built on), each while no job starts being created
// with it. An image that stays after all (its removal failed, or a job
// is being created with it) keeps the images it is built on, which would
// otherwise lose their names alone.
func (c *Collector) removeImages(ctx context.Context, plans []imagePlan) {
	var stayed []Image
	for i := range plans {
		p := &plans[i]
		if !p.Remove {
			continue
		}
		img := Image{ID: p.ID, Tags: p.Refs, Layers: p.layers}
		if j := slices.IndexFunc(stayed, func(f Image) bool { return builtOn(f, img, nil) }); j >= 0 {
			p.Remove = false
			p.Reason = "an image that stays is built on it: " + name(stayed[j])
			continue
		}
		err := c.jobs.HoldImages(func(wanted []string) error {
			if slices.ContainsFunc(wanted, func(w string) bool { return refers(w, img) }) {
				return errWanted
			}
			for _, ref := range p.Refs {
				if err := c.engine.RemoveImage(ctx, ref); err != nil {
					return err
				}
			}
			return nil
		})
		if errors.Is(err, errWanted) {
			p.Remove = false
			p.Reason = errWanted.Error()
			stayed = append(stayed, img)
			continue
		}
		if err != nil {
			p.Error = err.Error()
			stayed = append(stayed, img)
			c.log.Warn("remove image", "image", name(img), "id", shortID(p.ID), "err", err)
			continue
		}
		c.log.Info("removed image", "image", name(img), "id", shortID(p.ID), "bytes", p.Size, "reason", p.Reason)
	}
}
