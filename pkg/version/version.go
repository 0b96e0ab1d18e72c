// Package version says which build of Flynn a binary is. `make build`
// stamps the release (git describe: "v1.2.0", "v1.2.0-3-gabc1234-dirty")
// into the binaries that link this package, and only those, so that the
// others' bytes, and their images, change only with their code
// (test/build checks it):
//
//	go build -ldflags "-X github.com/openflynn/flynn/pkg/version.stamped=v1.2.0" ./cmd/flynn
//
// A binary built without the stamp (go build, go install, go test) says
// the commit it was built from, as the Go toolchain recorded it, or "dev"
// when that is unknown too.
package version

import "runtime/debug"

// stamped is the version the linker sets (-X); empty when it did not.
// Only the linker writes it: -X can set nothing but a package-level
// string variable, and it stays unexported so that no code can.
var stamped string

// String returns the binary's version: the stamped one; else the VCS
// revision the toolchain recorded (its first 12 hex digits, with
// "-dirty" when the tree had uncommitted changes); else "dev".
func String() string {
	if stamped != "" {
		return stamped
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	return fromBuildInfo(info)
}

// revisionLen is how much of a commit hash a version shows, as git's
// abbreviated hashes in a big repository do.
const revisionLen = 12

// fromBuildInfo is the version the build settings say: the revision, or
// "dev" when they hold none.
func fromBuildInfo(info *debug.BuildInfo) string {
	var revision string
	var modified bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if revision == "" {
		return "dev"
	}
	if len(revision) > revisionLen {
		revision = revision[:revisionLen]
	}
	if modified {
		revision += "-dirty"
	}
	return revision
}
