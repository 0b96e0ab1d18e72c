package gc

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/openflynn/flynn/host"
)

// Container is a container of the engine, as the collector sees it.
type Container struct {
	// ID is the container's id.
	ID string
	// Name is its name, without Docker's leading slash.
	Name string
	// Image is the image as the container was created with it (a ref).
	Image string
	// ImageID is the id of the image it runs ("sha256:…").
	ImageID string
	// Labels are its labels.
	Labels map[string]string
	// State is the runtime's: "created", "running", "paused",
	// "restarting", "removing", "exited" or "dead".
	State string
	// FinishedAt is when its process ended (exited containers).
	FinishedAt time.Time
}

// exited reports whether the container's process has ended for good: a
// container being created ("created") or doing anything else is not.
func (c Container) exited() bool { return c.State == "exited" || c.State == "dead" }

// Image is an image of the engine, as the collector sees it.
type Image struct {
	// ID is the image's id ("sha256:…").
	ID string
	// Tags are its names ("flynn/router:3f2a9c01b7de"); none for a
	// dangling image.
	Tags []string
	// Labels are the labels of its config.
	Labels map[string]string
	// Created is when it was made.
	Created time.Time
	// Size is its size in bytes, its parents' layers included.
	Size int64
	// Layers are the digests of its filesystem's layers, base first.
	Layers []string
	// ParentID is the image the classic builder made it on, when the
	// engine knows it ("" otherwise).
	ParentID string
}

// Label keys of the images package (layer 1, which flynn-host does not
// import; TestImagesPackageAgrees holds the two together).
const (
	// LabelName holds a platform image's repository ("flynn/router").
	LabelName = "org.openflynn.image"
	// LabelContent holds the content hash its tag is made of.
	LabelContent = "org.openflynn.content"
)

// kind is what the collector knows an image for; unmanaged ones it never
// removes.
type kind int

const (
	unmanaged kind = iota
	archive        // a loaded image archive: fetched again when needed
	build          // an image build the controller never took
	platform       // a content-tagged image of `make images`
)

// snapshot is what one run decides from.
type snapshot struct {
	containers []Container
	images     []Image
	// manifest is the current images manifest; nil when none is known.
	manifest *manifest
	// unfinished are the ids of the jobs the daemon tracks as not ended.
	unfinished map[string]bool
	// wanted are the images of jobs being created, as they name them.
	wanted []string
	now    time.Time
}

// imagePlan is the decision on one managed image.
type imagePlan struct {
	host.GCImage
	layers []string
}

// plan is what a run removes and keeps.
type plan struct {
	containers []host.GCContainer
	images     []imagePlan
}

// decide applies the rules of the package documentation to s. It is pure:
// the same snapshot gives the same plan.
func decide(s snapshot, cfg *Config) plan {
	return plan{containers: decideContainers(s, cfg), images: decideImages(s, cfg)}
}

// decideContainers keeps the KeepExited most recently exited job
// containers of the host, those of jobs that have not ended and those
// that exited less than MinAge ago, and removes the others. Containers
// that are not the host's jobs', or have not exited, are not listed.
func decideContainers(s snapshot, cfg *Config) []host.GCContainer {
	type exited struct {
		c          Container
		jobID, app string
	}
	var list []exited
	for _, c := range s.containers {
		jobID, app, ok := cfg.Owned(c.Labels)
		if !ok || jobID == "" || !c.exited() {
			continue
		}
		list = append(list, exited{c, jobID, app})
	}
	slices.SortFunc(list, func(a, b exited) int {
		if n := b.c.FinishedAt.Compare(a.c.FinishedAt); n != 0 {
			return n
		}
		return cmp.Compare(a.c.ID, b.c.ID)
	})
	out := make([]host.GCContainer, 0, len(list))
	for i, e := range list {
		d := host.GCContainer{ID: e.c.ID, JobID: e.jobID, App: e.app, Image: e.c.Image, ExitedAt: e.c.FinishedAt}
		switch {
		case i < cfg.KeepExited:
			d.Reason = fmt.Sprintf("among the %d most recently exited", cfg.KeepExited)
		case s.unfinished[e.jobID]:
			d.Reason = "its job has not ended on this host"
		case s.now.Sub(e.c.FinishedAt) < cfg.MinAge:
			d.Reason = "exited less than " + duration(cfg.MinAge) + " ago"
		default:
			d.Remove = true
			d.Reason = fmt.Sprintf("older than the %d most recently exited", cfg.KeepExited)
		}
		out = append(out, d)
	}
	return out
}

// decideImages decides on every image the collector manages (an image
// with a name it does not manage is listed, kept, when it has one it
// does), removals first in the order they are made: an image before the
// images it was built on.
func decideImages(s snapshot, cfg *Config) []imagePlan {
	usedBy := map[string]Container{}
	for _, c := range s.containers {
		// The reason names a running container before an exited one.
		prev, ok := usedBy[c.ImageID]
		if !ok || prev.exited() && !c.exited() || prev.exited() == c.exited() && c.Name < prev.Name {
			usedBy[c.ImageID] = c
		}
	}
	byID := map[string]Image{}
	for _, img := range s.images {
		byID[img.ID] = img
	}
	var plans []imagePlan
	kept := map[string]bool{} // every image that stays, managed or not
	for _, img := range s.images {
		k, foreign := cfg.kindOf(img)
		if k == unmanaged {
			kept[img.ID] = true
			continue
		}
		p := imagePlan{GCImage: host.GCImage{ID: img.ID, Refs: slices.Clone(img.Tags), Size: img.Size, CreatedAt: img.Created}, layers: img.Layers}
		slices.Sort(p.Refs)
		p.Remove, p.Reason = cfg.imageRule(s, img, k, foreign, usedBy)
		if !p.Remove {
			kept[img.ID] = true
		}
		plans = append(plans, p)
	}
	// An image that stays keeps every image it was built on.
	for i := range plans {
		p := &plans[i]
		if !p.Remove {
			continue
		}
		for _, k := range s.images {
			if kept[k.ID] && builtOn(k, byID[p.ID], byID) {
				p.Remove = false
				p.Reason = "an image that stays is built on it: " + name(k)
				break
			}
		}
	}
	slices.SortStableFunc(plans, func(a, b imagePlan) int {
		switch {
		case a.Remove != b.Remove:
			if a.Remove {
				return -1
			}
			return 1
		case a.Remove && len(a.layers) != len(b.layers):
			return cmp.Compare(len(b.layers), len(a.layers))
		}
		return cmp.Compare(a.sortKey(), b.sortKey())
	})
	return plans
}

func (p imagePlan) sortKey() string {
	if len(p.Refs) > 0 {
		return p.Refs[0]
	}
	return p.ID
}

// imageRule is the first rule that keeps img, or the one that removes it.
func (cfg *Config) imageRule(s snapshot, img Image, k kind, foreign string, usedBy map[string]Container) (remove bool, reason string) {
	if foreign != "" {
		return false, "also named " + foreign + ", which the collector does not manage"
	}
	if c, ok := usedBy[img.ID]; ok {
		state := "exited"
		if !c.exited() {
			state = c.State
		}
		return false, "used by " + state + " container " + cmp.Or(c.Name, shortID(c.ID))
	}
	if slices.ContainsFunc(s.wanted, func(w string) bool { return refers(w, img) }) {
		return false, "a job is being created with it"
	}
	if key, ok := s.manifest.names(img); ok {
		return false, "in the images manifest (" + key + ")"
	}
	if k == platform && slices.ContainsFunc(img.Tags, func(t string) bool { return strings.HasSuffix(t, ":latest") }) {
		return false, "the latest build of " + img.Labels[LabelName]
	}
	age := s.now.Sub(img.Created)
	if age < cfg.MinAge {
		return false, "made less than " + duration(cfg.MinAge) + " ago"
	}
	switch k {
	case archive:
		return true, "a loaded image archive no container uses; loaded again from its URL when a job needs it"
	case build:
		return true, "a build's image the controller never took"
	}
	switch {
	case s.manifest == nil:
		return false, "an older platform build, kept: no images manifest is known"
	case age < cfg.PlatformGrace:
		return false, "an older platform build, made less than " + duration(cfg.PlatformGrace) + " ago"
	}
	return true, "an older platform build no container uses, made more than " + duration(cfg.PlatformGrace) + " ago"
}

// kindOf says what img is to the collector: the kind of its names (a
// platform name wins over the others), or unmanaged when it has none, or
// when one of them is out of ImageScope; foreign is a name of it the
// collector does not manage, beside managed ones.
func (cfg *Config) kindOf(img Image) (k kind, foreign string) {
	for _, t := range img.Tags {
		if cfg.ImageScope != "" && !strings.HasPrefix(t, cfg.ImageScope) {
			return unmanaged, ""
		}
	}
	for _, t := range img.Tags {
		tk := cfg.tagKind(img, t)
		if tk == unmanaged {
			if foreign == "" {
				foreign = t
			}
			continue
		}
		k = max(k, tk)
	}
	if k == unmanaged {
		foreign = ""
	}
	return k, foreign
}

// tagKind is the kind of one name of img. A platform name is the one the
// images package gives it (its LabelName, and its LabelContent or latest
// as the tag), so that an image built FROM a platform image, which
// inherits its labels, is not taken for one.
func (cfg *Config) tagKind(img Image, tag string) kind {
	switch {
	case strings.HasPrefix(tag, cfg.ArchivePrefix):
		return archive
	case strings.HasPrefix(tag, cfg.BuildPrefix) && img.Labels[host.BuildLabelApp] != "":
		return build
	}
	name, content := img.Labels[LabelName], img.Labels[LabelContent]
	if name != "" && content != "" && (tag == name+":"+content || tag == name+":latest") {
		return platform
	}
	return unmanaged
}

// builtOn reports whether image was built on base: base's layers are the
// first of image's, or base is among image's parents.
func builtOn(image, base Image, byID map[string]Image) bool {
	if image.ID == "" || base.ID == "" || image.ID == base.ID {
		return false
	}
	if n := len(base.Layers); n > 0 && n < len(image.Layers) && slices.Equal(base.Layers, image.Layers[:n]) {
		return true
	}
	seen := map[string]bool{}
	for p := image.ParentID; p != "" && !seen[p]; p = byID[p].ParentID {
		if p == base.ID {
			return true
		}
		seen[p] = true
	}
	return false
}

// refers reports whether ref, as a job names its image, may name img: one
// of its tags (with ":latest" implied), or its id or a prefix of it.
func refers(ref string, img Image) bool {
	ref = strings.TrimPrefix(ref, "docker.io/")
	if ref == "" {
		return false
	}
	for _, t := range img.Tags {
		if ref == t || ref+":latest" == t {
			return true
		}
	}
	hex := strings.TrimPrefix(img.ID, "sha256:")
	r := strings.TrimPrefix(ref, "sha256:")
	return ref == img.ID || (len(r) >= 12 && strings.HasPrefix(hex, r))
}

// name is how an image is named in a reason.
func name(img Image) string {
	if len(img.Tags) > 0 {
		return slices.Min(img.Tags)
	}
	return shortID(img.ID)
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// duration writes d as people say it: "1h", "24h", "90m", "30s".
func duration(d time.Duration) string {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute && d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}
