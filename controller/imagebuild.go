package controller

// ImageBuildEvent is one line of the NDJSON answer of POST
// /apps/:id/images/build, which builds the Dockerfile of a context tar on
// a host: Line events as the build goes, then one Artifact or Error.
type ImageBuildEvent struct {
	// Line is a line of the build's output.
	Line string `json:"line,omitempty"`
	// Artifact ends a build that succeeded: the docker-archive artifact
	// of the image, stored as an uploaded one (POST /apps/:id/images).
	Artifact *Artifact `json:"artifact,omitempty"`
	// Error ends a build that failed.
	Error *ImageBuildError `json:"error,omitempty"`
}

// ImageBuildError is why a build failed, as an API error's code and
// message (validation_error for a build that ran and failed).
type ImageBuildError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}
