// Package images builds every container image the cluster runs, locally,
// because no image registry is reachable: Debian root filesystems made by
// mmdebstrap from the host's apt sources, one per Debian suite, and images
// that add to them: Debian packages apt installs (the stack's runtimes, the
// compilers, PostgreSQL) and files (the static component binaries, the
// buildpacks, a Go toolchain).
//
//	definitions ──► content tag ──► exists? ──yes──► done (no-op)
//	                                   │no
//	                 Debian root: mmdebstrap | docker import
//	                 layer:       docker build (FROM parent, RUN apt-get, COPY files)
//	                                   │
//	                          tag name:<hash> and name:latest ──► Manifest
//
// An image's tag is derived from its inputs only (package list and mmdebstrap
// options for a root, the parent's image id, the packages and the files'
// contents for a layer), so a second build that changes nothing finds every
// tag and does nothing; a changed binary changes its image's tag and nothing
// else.
package images

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Label keys set on every image this package builds, so tests and cleanups
// can select exactly these images.
const (
	// LabelName holds the image's repository name, e.g. "flynn/stack".
	LabelName = "org.openflynn.image"
	// LabelContent holds the content hash the image's tag is made from.
	LabelContent = "org.openflynn.content"
)

// Image describes one image. Exactly one of Debian and From is set: an image
// is either a Debian root filesystem or a layer on another image of the
// same build: Packages, then Commands, then Files.
type Image struct {
	// Key names the image in the manifest, e.g. "stack" or "router".
	Key string
	// Name is the repository, e.g. "flynn/router"; tags are added by Build.
	Name string
	// Debian, when set, makes this image a Debian root filesystem.
	Debian *Debian
	// From is the Key of the parent image, built before this one.
	From string
	// Packages, with From, are Debian packages apt installs on the parent
	// from its apt sources, over the host's network (and its /etc/hosts
	// and resolver), without recommends.
	Packages []string
	// Commands, with From, are shell commands run in the parent after
	// Packages are installed, in the same layer.
	Commands []string
	// Files, with From, are copied into the image after Commands.
	Files []File
	// Env entries ("K=V") set in the image config.
	Env []string
	// Entrypoint of the image; empty keeps the parent's.
	Entrypoint []string
	// Cmd of the image; empty keeps the parent's.
	Cmd []string
	// WorkDir of the image; empty keeps the parent's.
	WorkDir string
	// Optional marks images whose files may be missing (a component whose
	// binary was not built yet): Build skips them with a log line instead of
	// failing.
	Optional bool
}

// Debian describes a root filesystem made by mmdebstrap.
type Debian struct {
	// Suite is the Debian release, e.g. "bookworm".
	Suite string
	// Variant is mmdebstrap's variant, e.g. "minbase".
	Variant string
	// Packages are installed on top of the variant.
	Packages []string
	// Options are extra mmdebstrap arguments (dpkg path excludes, apt options).
	Options []string
}

// File is a file or directory tree on the host copied into an image.
type File struct {
	// Source is the path on the host.
	Source string
	// Dest is the absolute path in the image.
	Dest string
	// Exclude lists paths relative to Source that are left out (a directory
	// excludes its whole tree).
	Exclude []string
	// Mode, when non-zero, overrides the permission bits of a single file.
	Mode os.FileMode
}

// Built is one image in the manifest.
type Built struct {
	// Ref is the content-tagged reference, e.g. "flynn/router:3f2a9c01b7de".
	Ref string `json:"ref"`
	// ID is Docker's image id.
	ID string `json:"id"`
}

// Manifest maps an image's Key to what was built; bootstrap reads it to know
// which image each component runs.
type Manifest map[string]Built

// WriteFile writes the manifest as indented JSON, atomically.
func (m Manifest) WriteFile(path string) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".images-*.json")
	if err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write manifest: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}

// ReadManifest reads a manifest written by WriteFile.
func ReadManifest(path string) (Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("decode manifest %s: %w", path, err)
	}
	return m, nil
}
