// Package blobgc deletes the blobs no one needs any more: everything an
// app kept in the blobstore once the app is deleted, and the slugs of
// live apps that none of their releases names.
//
// The blobstore stores opaque paths and knows nothing of apps; the
// controller knows which apps exist and what their releases name. So the
// collector runs beside the controller (controller/controllerd starts it)
// and asks each side what it knows:
//
//	blobstore: List("apps/") ──┐
//	                           ├─► plan ─► Delete each blob to collect
//	controller database:       │
//	  apps, strings of releases┘
//	  that mention "apps/"
//
// Paths follow gitreceive: an app's slugs are apps/<app id>/slug-<uuid>.tgz,
// named by its releases' SLUG_URL, and its build cache is
// apps/<app id>/cache.tgz. The images `flynn docker push` uploads are
// apps/<app id>/images/<uuid>.tar (controller/server's images.go), named
// by the URI of a docker-archive artifact. A pass deletes
//
//   - every blob under apps/<id>/ when no app has the id <id>;
//   - a slug directly under apps/<id>/ that no release of any app names,
//     once it is older than Config.Grace (a build uploads its slug before
//     the release that names it exists).
//
// It keeps the build cache of a live app, any other blob of a live app,
// and every path that is not apps/<UUID>/…: not the platform's to judge.
// A live app's images are such other blobs, kept whether a release names
// them or not: an artifact names its image before any release uses it,
// and the references read here count only artifacts that releases use.
// Releases are never deleted but with their app, so every image pushed
// stays for rollbacks until the app goes.
//
// The blobs are listed before the database is read. A blob listed was
// uploaded for an app that existed by then, and app ids are never reused,
// so an app that is missing from the later read was deleted: its blobs go
// without a grace period. A release is matched to a slug by the text that
// follows "apps/<id>/" in any of its strings, so a SLUG_URL names its slug
// whatever the blobstore's host name or the URL's query.
//
// Every controller runs a collector, and passes are idempotent: a blob
// another pass deleted first is not an error. Nothing is remembered
// between passes; a pass that failed halfway is finished by the next.
package blobgc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/openflynn/flynn/blobstore"
	"github.com/openflynn/flynn/controller/postgres"
)

// DefaultInterval is Config.Interval when zero.
const DefaultInterval = 10 * time.Minute

// DefaultGrace is Config.Grace when zero: far longer than a build takes
// from uploading its slug to creating its release.
const DefaultGrace = time.Hour

// Prefix is where the platform keeps apps' blobs: apps/<app id>/.
const Prefix = "apps/"

// Blobs is the blobstore as the collector uses it; *blobstore/client.Client
// is one.
type Blobs interface {
	// List returns every blob whose path starts with prefix.
	List(ctx context.Context, prefix string) ([]blobstore.Info, error)
	// Delete removes a blob; blobstore.ErrNotFound when it is gone.
	Delete(ctx context.Context, path string) error
}

// References reads which apps exist and what their releases mention;
// *postgres.Store is one.
type References interface {
	BlobReferences(ctx context.Context, substr string) (*postgres.BlobReferences, error)
}

// Config configures a Collector.
type Config struct {
	// Blobs is the blobstore (required).
	Blobs Blobs
	// References is the controller's database (required).
	References References
	// Interval is the time between passes; DefaultInterval when zero.
	Interval time.Duration
	// Grace is how old an unnamed slug must be to be collected;
	// DefaultGrace when zero.
	Grace time.Duration
	// Now is the clock blob ages are measured by; time.Now when nil.
	Now func() time.Time
}

// Collector deletes unused blobs, a pass at a time.
type Collector struct {
	cfg Config
	log *slog.Logger
}

// New returns a collector; Run starts its passes.
func New(cfg Config, logger *slog.Logger) *Collector {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Collector{cfg: cfg, log: logger.With("component", "blobgc")}
}

// Run makes a pass every Interval, the first after a random part of it
// (so that the controllers of a cluster, started together, spread theirs),
// until ctx ends. A failed pass is logged and the next one tries again.
func (c *Collector) Run(ctx context.Context) {
	timer := time.NewTimer(rand.N(c.cfg.Interval))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		res, err := c.Collect(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			c.log.Warn("blob collection failed", "err", err, "deleted", len(res.Deleted))
		} else if len(res.Deleted) > 0 {
			c.log.Info("blobs collected", "deleted", len(res.Deleted), "kept", res.Kept)
		}
		timer.Reset(c.cfg.Interval)
	}
}

// Result says what a pass did.
type Result struct {
	// Deleted are the paths the pass deleted (or found gone already).
	Deleted []string
	// Kept counts the blobs under Prefix it left.
	Kept int
}

// Collect makes one pass. It returns what it deleted even when it fails
// partway; a blob it could not delete does not stop it from deleting the
// others, and the error names each failure.
func (c *Collector) Collect(ctx context.Context) (Result, error) {
	var res Result
	// First the blobs, then the database: see the package comment.
	blobs, err := c.cfg.Blobs.List(ctx, Prefix)
	if err != nil {
		return res, fmt.Errorf("list blobs: %w", err)
	}
	refs, err := c.cfg.References.BlobReferences(ctx, Prefix)
	if err != nil {
		return res, fmt.Errorf("read references: %w", err)
	}
	p := newPlan(refs, c.cfg.Now().Add(-c.cfg.Grace))
	var errs []error
	for _, b := range blobs {
		reason := p.collect(b)
		if reason == "" {
			res.Kept++
			continue
		}
		if err := c.cfg.Blobs.Delete(ctx, b.Path); err != nil && !errors.Is(err, blobstore.ErrNotFound) {
			if ctx.Err() != nil {
				return res, errors.Join(append(errs, ctx.Err())...)
			}
			errs = append(errs, fmt.Errorf("delete %s: %w", b.Path, err))
			res.Kept++
			continue
		}
		c.log.Info("blob deleted", "path", b.Path, "size", b.Size, "modified", b.ModTime, "reason", reason)
		res.Deleted = append(res.Deleted, b.Path)
	}
	return res, errors.Join(errs...)
}

// appDir matches "apps/<app id>/" and captures the id.
var appDir = regexp.MustCompile(`apps/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})/`)

// plan decides, blob by blob, what a pass collects.
type plan struct {
	apps map[string]bool
	// named maps an app id to the text after "apps/<id>/" in each string
	// of a release that holds it: a blob there is named when one of them
	// starts with its name.
	named map[string][]string
	// cutoff is the newest modification time of a slug that may go.
	cutoff time.Time
}

func newPlan(refs *postgres.BlobReferences, cutoff time.Time) *plan {
	p := &plan{apps: map[string]bool{}, named: map[string][]string{}, cutoff: cutoff}
	for _, id := range refs.AppIDs {
		p.apps[strings.ToLower(id)] = true
	}
	for _, m := range refs.Mentions {
		p.addMention(m)
		// A URL might carry the path escaped; counting too many blobs as
		// named only keeps them.
		if u, err := url.PathUnescape(m); err == nil && u != m {
			p.addMention(u)
		}
	}
	return p
}

func (p *plan) addMention(m string) {
	for _, loc := range appDir.FindAllStringSubmatchIndex(m, -1) {
		id := strings.ToLower(m[loc[2]:loc[3]])
		p.named[id] = append(p.named[id], m[loc[1]:])
	}
}

// collect returns why blob b should be deleted, or "" to keep it.
func (p *plan) collect(b blobstore.Info) string {
	loc := appDir.FindStringSubmatchIndex(b.Path)
	if loc == nil || loc[0] != 0 {
		return "" // not apps/<UUID>/…
	}
	id, name := strings.ToLower(b.Path[loc[2]:loc[3]]), b.Path[loc[1]:]
	if !p.apps[id] {
		return "app deleted"
	}
	if !isSlug(name) || !b.ModTime.Before(p.cutoff) {
		return ""
	}
	for _, rest := range p.named[id] {
		if strings.HasPrefix(rest, name) {
			return ""
		}
	}
	return "slug named by no release"
}

// isSlug reports whether name (the path after apps/<id>/) is a slug as
// gitreceive names them: slug-<uuid>.tgz, directly in the app's directory.
func isSlug(name string) bool {
	return strings.HasPrefix(name, "slug-") && strings.HasSuffix(name, ".tgz") && !strings.Contains(name, "/")
}
