package daemon

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/host/gc"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// The daemon's garbage collector (package gc, whose documentation gives
// the rules) runs over a backend that is a gc.Engine (Docker's): every
// Config.GC.Interval when Config.CollectGarbage is set, and once on each
// POST /host/gc. The daemon is its gc.Jobs: it names the jobs that have
// not ended, whose containers stay whatever their number, and the images
// of the jobs being created, which stay whatever their age; a job waits
// to start being created while the collector removes an image, so that
// it never finds its image gone between its resolution and its
// container's creation. (Finished jobs beyond MaxFinished lose their
// containers, records and logs at once, see collect; the collector is
// for what that misses: containers of jobs no daemon tracks, and images.)

var _ gc.Jobs = (*Daemon)(nil)

// newCollector returns the daemon's collector, or nil when the backend
// is no gc.Engine.
func (d *Daemon) newCollector() (*gc.Collector, error) {
	engine, ok := d.backend.(gc.Engine)
	if !ok {
		return nil, nil
	}
	cfg := d.cfg.GC
	cfg.Owned = d.owns
	if cfg.ArchivePrefix == "" {
		cfg.ArchivePrefix = archivePrefix
	}
	return gc.New(cfg, engine, d, d.log)
}

// owns reports whether a container is one of this host's jobs' (it
// carries the host's id, a job id and every Config.Labels), and names
// the job and its app.
func (d *Daemon) owns(labels map[string]string) (jobID, app string, ok bool) {
	if labels[LabelHostID] != d.cfg.HostID || labels[LabelJobID] == "" {
		return "", "", false
	}
	for k, v := range d.cfg.Labels {
		if labels[k] != v {
			return "", "", false
		}
	}
	var jb host.Job
	if json.Unmarshal([]byte(labels[LabelJob]), &jb) == nil {
		app = jb.Metadata[host.MetaAppName]
	}
	return labels[LabelJobID], app, true
}

// Unfinished implements gc.Jobs: the jobs that have not ended.
func (d *Daemon) Unfinished() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for id, j := range d.jobs {
		if !j.active.State.Terminal() {
			out = append(out, id)
		}
	}
	return out
}

// HoldImages implements gc.Jobs: fn gets the images of the jobs being
// created and of the archives being loaded, and no job starts being
// created until it returns.
func (d *Daemon) HoldImages(fn func(wanted []string) error) error {
	d.imageMu.Lock()
	defer d.imageMu.Unlock()
	wanted := slices.Collect(maps.Keys(d.creating))
	d.mu.Lock()
	for ref := range d.loads {
		wanted = append(wanted, ref)
	}
	d.mu.Unlock()
	return fn(wanted)
}

// holdImage marks the image of jb as wanted by a job being created until
// the returned func is called, once the job's container exists (or will
// not).
func (d *Daemon) holdImage(jb *host.Job) (release func()) {
	ref := jb.Artifact
	if strings.Contains(ref, "://") {
		u, err := host.ArchiveURL(ref)
		if err != nil {
			return func() {} // refused by jobImage
		}
		ref = archiveRef(u)
	}
	d.imageMu.Lock()
	d.creating[ref]++
	d.imageMu.Unlock()
	return func() {
		d.imageMu.Lock()
		if d.creating[ref]--; d.creating[ref] <= 0 {
			delete(d.creating, ref)
		}
		d.imageMu.Unlock()
	}
}

// CollectGarbage runs the garbage collector once: with dryRun it removes
// nothing and reports what it would remove. A host whose backend has no
// collector answers not_found.
func (d *Daemon) CollectGarbage(ctx context.Context, dryRun bool) (*host.GCReport, error) {
	if d.gc == nil {
		return nil, httpjson.NotFound("this host has no garbage collector")
	}
	return d.gc.Collect(ctx, dryRun)
}
