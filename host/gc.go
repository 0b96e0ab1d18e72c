package host

import "time"

// Garbage collection: POST /host/gc removes the exited job containers and
// the unused images the host's collector would remove at its next run
// (see host/gc for the rules), and answers a GCReport; with
// ?dry_run=true it removes nothing and answers what it would remove.

// GCReport is what one run of a host's garbage collector removed, or
// would remove in a dry run.
type GCReport struct {
	// DryRun says that nothing was removed: Remove marks what would be.
	DryRun bool `json:"dry_run"`
	// Containers are the job containers of the host that have exited,
	// newest first, kept or removed.
	Containers []GCContainer `json:"containers"`
	// Images are the images the collector manages (content-tagged
	// platform images, loaded archives, unsaved builds), kept or removed,
	// in the order they are removed.
	Images []GCImage `json:"images"`
	// ImageBytes is the sum of the sizes of the images removed (or to be
	// removed), without their errors': an upper bound of the disk space
	// freed, since layers another image shares stay.
	ImageBytes int64 `json:"image_bytes"`
}

// GCContainer is one exited job container.
type GCContainer struct {
	// ID is the container's id.
	ID string `json:"id"`
	// JobID is the job it ran.
	JobID string `json:"job_id"`
	// App is the name of the job's app, when the job names one.
	App string `json:"app,omitempty"`
	// Image is the image it ran.
	Image string `json:"image,omitempty"`
	// ExitedAt is when its process ended.
	ExitedAt time.Time `json:"exited_at,omitzero"`
	// Remove says that it is (or in a dry run would be) removed.
	Remove bool `json:"remove"`
	// Reason says why it is kept or removed.
	Reason string `json:"reason"`
	// Error is why its removal failed; it is then still there.
	Error string `json:"error,omitempty"`
}

// GCImage is one image the collector manages.
type GCImage struct {
	// ID is the image's id ("sha256:…").
	ID string `json:"id"`
	// Refs are its names ("flynn/router:3f2a9c01b7de").
	Refs []string `json:"refs"`
	// Size is the image's size in bytes, its parents' layers included.
	Size int64 `json:"size"`
	// CreatedAt is when the image was made.
	CreatedAt time.Time `json:"created_at,omitzero"`
	// Remove says that it is (or in a dry run would be) removed.
	Remove bool `json:"remove"`
	// Reason says why it is kept or removed.
	Reason string `json:"reason"`
	// Error is why its removal failed; it is then (partly) still there.
	Error string `json:"error,omitempty"`
}
