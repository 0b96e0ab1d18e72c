// Package slugbuilder turns an app's source into a slug with Heroku-style
// buildpacks. It runs as a build job in the flynn/slugbuilder image:
//
//	stdin (tar of the pushed tree, bounded) ──► /app
//	CACHE_URL ──GET (404: first build)──► /tmp/cache
//	.slugignore applied ──► detect ──► compile ──► release ──► Procfile
//	/app without .git ──tar.gz──PUT──► SLUG_PUT_URL
//	/tmp/cache ──tar.gz──PUT──► CACHE_PUT_URL
//	last stdout line: FLYNN_PROCESS_TYPES {"web":"npm start",…}
//
// or, when no buildpack matches and the tree has a Dockerfile:
//
//	detect: none ──► Dockerfile at the root ──► last stdout line:
//	FLYNN_BUILD_DOCKERFILE (no slug, no cache saved, exit 0)
//
// It needs no privilege: it runs as the image's unprivileged user (uid
// 1000, HOME=/app) and writes only under /app, /tmp (the cache, the
// config vars, fetched buildpacks, the archives it uploads) and $TMPDIR.
// The pushed tree is refused, with nothing of it left in /app, when it
// unpacks to more than Config.MaxSourceBytes or holds more than
// Config.MaxSourceEntries entries (a tar bomb); the check is on the tar
// headers, so a huge or sparse file is refused before a byte is written.
//
// # The buildpack API
//
// A buildpack is a directory with bin/detect, bin/compile and bin/release:
//
//   - `bin/detect BUILD_DIR` exits 0 when it can build the app and prints
//     its name; the first bundled buildpack (in the order of the bundle's
//     `order` file, then by directory name) that matches builds the app.
//   - `bin/compile BUILD_DIR CACHE_DIR ENV_DIR` builds in place; its output
//     is streamed to the user. CACHE_DIR survives between builds of the app;
//     ENV_DIR holds one file per config var of the app (name → value).
//   - `bin/release BUILD_DIR` prints YAML whose default_process_types are
//     the buildpack's defaults; they are saved in /app/.release, where
//     slugrunner finds them.
//
// BUILDPACK_URL (a git URL, optionally with #ref, or an http(s) URL of a
// .tgz/.tar.gz) replaces detection with that buildpack; a `.buildpacks` file
// in the app lists several (one URL or bundled name a line) that all
// compile, in order. Types in the app's Procfile win over the defaults.
//
// # The job's contract (environment)
//
//   - SLUG_PUT_URL: where the slug is PUT: a signed, single-use URL of
//     the blobstore (see blobstore/signed), the job's only credential.
//   - CACHE_URL, CACHE_PUT_URL: optional; the app's build cache, fetched
//     (GET) before the build and PUT after it, each with its own signed
//     URL.
//   - SOURCE_VERSION: the pushed commit, passed to buildpacks.
//   - BUILDPACK_URL: optional, as above.
//   - STACK: optional; the STACK buildpacks see instead of Stack
//     ("flynn-bookworm"), for buildpacks that accept only Heroku's stack
//     names (buildpacks/README.md).
//   - FLYNN_CA_CERTS (cabundle.EnvVar): optional PEM certificates that
//     the build trusts besides the system's: before any buildpack runs
//     they are added to the system's bundle in
//     /tmp/flynn-ca-certificates.crt, which SSL_CERT_FILE, PIP_CERT,
//     CURL_CA_BUNDLE and the like then name (see package cabundle), and
//     buildpacks fetched over HTTPS are checked against it.
//   - Every other variable except the job's own (PATH, HOME, HOSTNAME, …,
//     FLYNN_*, SLUG_*, CACHE_URL, CACHE_PUT_URL, SOURCE_VERSION, PORT) is
//     taken for an app config var and written to ENV_DIR. SLUG_PUT_URL,
//     CACHE_URL, CACHE_PUT_URL and FLYNN_* but FLYNN_CA_CERTS are kept
//     from the buildpacks' environment: they grant access to the
//     blobstore, and BUILDPACK_URL may run anyone's code.
//   - Package mirrors (GOPROXY, npm_config_registry, PIP_INDEX_URL, …)
//     come from the cluster's build env (`flynn cluster build-env set`)
//     or the app's config vars (`flynn env set`, which win), which reach
//     the job alike, so they are in the environment buildpacks run with;
//     flynn-host mounts its CA bundle into every job. The build job's
//     memory, process and disk limits are set by whoever starts it.
//
// A buildpack's compile may leave a file `export` at the top of its
// directory (Heroku's multi-buildpack convention); bash sources it after
// that buildpack and the buildpacks after it run with the variables it
// set.
//
// # Dockerfile apps
//
// When no buildpack is named (BUILDPACK_URL, .buildpacks) and none of the
// bundled ones detects the app, but the root of the tree has a regular
// file named Dockerfile, the job builds nothing itself: it says so, ends
// with DockerfileLine instead of the process types, uploads no slug and
// saves no cache, and exits 0. The reader (gitreceive) then has the
// cluster build the Dockerfile (see controller/client's BuildImage): a
// build job has no Docker to build it with, by design.
//
// Output is the buildpacks' own plus "-----> " step lines. The very last line
// on success is FLYNN_PROCESS_TYPES followed by a space and a JSON object of
// the release's process types; readers (gitreceive) consume it with
// ParseProcessTypesLine and should not show it to the user. On failure the
// job exits non-zero after a " !     " line saying why. When the job is
// stopped (SIGTERM, e.g. its client disconnected) the running buildpack's
// process group is killed and nothing is uploaded.
package slugbuilder

import (
	"encoding/json"
	"io"
	"strings"
)

// ProcessTypesPrefix starts the machine-readable last line of a build.
const ProcessTypesPrefix = "FLYNN_PROCESS_TYPES "

// ParseProcessTypesLine returns the process types of a FLYNN_PROCESS_TYPES
// line; ok is false for any other line.
func ParseProcessTypesLine(line string) (types map[string]string, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimRight(line, "\r\n"), ProcessTypesPrefix)
	if !found {
		return nil, false
	}
	if err := json.Unmarshal([]byte(rest), &types); err != nil {
		return nil, false
	}
	return types, true
}

// DockerfileLine is the last line of a build that found no buildpack but a
// Dockerfile: nothing was compiled or uploaded, and the app is to be built
// from its Dockerfile. Readers recognise it with ParseDockerfileLine and
// should not show it to the user.
const DockerfileLine = "FLYNN_BUILD_DOCKERFILE"

// ParseDockerfileLine reports whether line is DockerfileLine.
func ParseDockerfileLine(line string) bool {
	return strings.TrimRight(line, "\r\n") == DockerfileLine
}

// writeProcessTypesLine prints the machine-readable result line.
func writeProcessTypesLine(w io.Writer, types map[string]string) error {
	if types == nil {
		types = map[string]string{}
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // commands are shell, not HTML: keep && readable
	if err := enc.Encode(types); err != nil {
		return err
	}
	_, err := io.WriteString(w, ProcessTypesPrefix+b.String())
	return err
}
