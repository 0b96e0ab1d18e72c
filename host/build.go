package host

import "time"

// The build service: POST /host/images/build runs `docker build` of a
// Dockerfile on the host for the controller (a git push of a repository
// with a Dockerfile), so that no build runs in gitreceive or in a job
// that holds the Docker socket. Query parameters:
//
//	app      the app's id (required): the image's org.openflynn.build.app label and its tag flynn-build/<app>:<random>
//	memory   the build's memory (and memory+swap) limit in bytes; default DefaultBuildMemory
//	timeout  a Go duration; default DefaultBuildTimeout, at most MaxBuildTimeout
//
// The body is the build context, a tar with a Dockerfile at its root, of
// at most MaxBuildContext bytes. A host running MaxBuilds builds already
// answers 503 (retry). Otherwise the answer is application/x-ndjson
// BuildEvents: lines as the build goes, then one with ImageID or Error.
// GET /host/images/:id/archive then streams the image as `docker save`
// writes it and removes the host's build tag of it.

// Bounds and defaults of a build.
const (
	// DefaultBuildMemory is a build's memory limit when the request names none.
	DefaultBuildMemory int64 = 2 << 30
	// MinBuildMemory is the least a build may ask for.
	MinBuildMemory int64 = 64 << 20
	// DefaultBuildTimeout is a build's time limit when the request names none.
	DefaultBuildTimeout = 30 * time.Minute
	// MaxBuildTimeout is the most a build may ask for.
	MaxBuildTimeout = time.Hour
	// MaxBuildContext bounds a build's context tar.
	MaxBuildContext int64 = 1 << 30
)

// BuildLabelApp is the label of every image a host builds: the app's id.
// Only images that carry it (and the host's build tag) are served by
// GET /host/images/:id/archive.
const BuildLabelApp = "org.openflynn.build.app"

// BuildTagPrefix is the repository prefix of the tags of built images:
// "flynn-build/<app id>:<random>".
const BuildTagPrefix = "flynn-build/"

// BuildEvent is one line of a build's NDJSON answer: exactly one field is set.
type BuildEvent struct {
	// Line is a line of the build's output, without its newline or ANSI
	// escapes.
	Line string `json:"line,omitempty"`
	// ImageID ends a build that succeeded: the image's id ("sha256:…").
	ImageID string `json:"image_id,omitempty"`
	// Error ends a build that failed: Docker's message, or the host's.
	Error string `json:"error,omitempty"`
}
