package daemon

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/random"
)

// Image builds: the host runs `docker build` of an app's Dockerfile for
// the controller (a git push of a repository with a Dockerfile), so that
// nothing holding the Docker socket runs the app's code.
//
//	BuildImage ─► a build slot (MaxBuilds; else service_unavailable, retry)
//	   ─► spool the context to StateDir/builds (at most host.MaxBuildContext)
//	   ─► every image the Dockerfile's FROM and COPY --from name is on the node
//	   ─► ImageBuilder.BuildImage: Docker's classic builder, on the app network
//	   ─► the image flynn-build/<app>:<random>, labelled org.openflynn.build.app
//	SaveBuiltImage ─► `docker save` of it ─► its flynn-build tags removed
//
// What a build may do, precisely: its RUN steps run as root in containers
// with Docker's default profile (Docker's default capabilities, its default
// seccomp and AppArmor profiles), NOT the stricter one of app jobs (which
// run as an unprivileged user with every capability dropped and
// no-new-privileges): a RUN step may chown, bind low ports in its own
// namespace, use raw sockets and the like, within its container. It is
// never privileged and mounts nothing of the host (the classic builder has
// no RUN --mount, and builds take no volumes). Its containers join the app
// network, so that the node's firewall applies to them as to app jobs:
// they reach the router's ports on the node and whatever app jobs reach
// beyond it (the internet, unless the operator's network fences it), and
// not the host API, discoverd, etcd or the other nodes' services. They do
// not get app jobs' /etc/hosts names (controller.<domain>…). No registry
// is asked for anything: every image the Dockerfile names must be on the
// node already (checked before the build; Docker's classic builder would
// otherwise pull a missing one anonymously), and no credentials are
// given. The build is bounded in memory (memory and memory+swap), in time
// (its context's deadline, which cancels Docker's build), in context size,
// and in number (MaxBuilds); its CPU weight is an app job's default. Not
// bounded: the disk its layers take until the image is saved and untagged
// (the intermediate containers are removed, failed or not), and its
// number of processes. ONBUILD triggers of a base image run as its own
// steps would, and may name images of their own, which are not checked.

// DefaultMaxBuilds is Config.MaxBuilds when zero.
const DefaultMaxBuilds = 2

// buildCPUShares is Docker's default CPU weight, which app jobs get when
// their process type sets no CPU.
const buildCPUShares = 1024

// ErrBuildFailed is wrapped by the error of a build that Docker ran and
// that failed (a RUN step's exit status, a bad Dockerfile).
var ErrBuildFailed = errors.New("build failed")

// BuildSpec is what the daemon asks an ImageBuilder to build.
type BuildSpec struct {
	// Context is the build context, a tar.
	Context io.Reader
	// Dockerfile is its path in the context.
	Dockerfile string
	// Tag names the image.
	Tag string
	// Labels are added to the image.
	Labels map[string]string
	// Network is the network RUN steps' containers join.
	Network string
	// Memory bounds memory and memory+swap of each RUN step.
	Memory int64
	// CPUShares is each RUN step's CPU weight.
	CPUShares int64
}

// ImageBuilder is the optional part of a Backend that builds and saves
// images (Docker's).
type ImageBuilder interface {
	// BuildImage builds spec, calling line for each line of output, and
	// returns once the image is tagged; a build that fails wraps
	// ErrBuildFailed with the builder's message.
	BuildImage(ctx context.Context, spec *BuildSpec, line func(string) error) error
	// SaveImage writes the image ref as `docker save` does.
	SaveImage(ctx context.Context, ref string, w io.Writer) error
	// RemoveImage removes the name ref (and the image, when nothing else
	// names or uses it).
	RemoveImage(ctx context.Context, ref string) error
}

// BuildRequest is a build the host API asks for.
type BuildRequest struct {
	// App is the app's id; it names and labels the image.
	App string
	// Memory is the build's memory limit; default host.DefaultBuildMemory.
	Memory int64
	// Timeout bounds the build; default host.DefaultBuildTimeout, at most
	// host.MaxBuildTimeout.
	Timeout time.Duration
	// Context is the build context, a tar of at most host.MaxBuildContext
	// bytes with a Dockerfile at its root.
	Context io.Reader
}

// appIDPattern is what an app id may be: it becomes part of an image name.
var appIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// check validates r and fills in its defaults.
func (r *BuildRequest) check() error {
	if !appIDPattern.MatchString(r.App) {
		return httpjson.ValidationError("app", "want an app id (lower-case letters, digits, '_', '.' or '-'), not %q", r.App)
	}
	if r.Memory == 0 {
		r.Memory = host.DefaultBuildMemory
	}
	if r.Memory < host.MinBuildMemory {
		return httpjson.ValidationError("memory", "at least %d bytes", host.MinBuildMemory)
	}
	if r.Timeout == 0 {
		r.Timeout = host.DefaultBuildTimeout
	}
	if r.Timeout < 0 || r.Timeout > host.MaxBuildTimeout {
		return httpjson.ValidationError("timeout", "between 0 and %s", host.MaxBuildTimeout)
	}
	return nil
}

// BuildImage builds req's Dockerfile and returns the image's id, calling
// line for each line of the build's output. It fails with an API error
// before any line (the request is bad, the host runs its MaxBuilds
// builds already, an image the Dockerfile names is not on the node), and
// with ErrBuildFailed or another error after.
func (d *Daemon) BuildImage(ctx context.Context, req BuildRequest, line func(string) error) (string, error) {
	builder, ok := d.backend.(ImageBuilder)
	loader, ok2 := d.backend.(ImageLoader)
	if !ok || !ok2 {
		return "", httpjson.Errorf(httpjson.CodeServiceUnavailable, "this host cannot build images")
	}
	if err := req.check(); err != nil {
		return "", err
	}
	select {
	case d.builds <- struct{}{}:
		defer func() { <-d.builds }()
	default:
		e := httpjson.Errorf(httpjson.CodeServiceUnavailable, "this host runs %d builds already", cap(d.builds))
		e.Retry = true
		return "", e
	}
	ctx, cancel := context.WithTimeout(ctx, req.Timeout)
	defer cancel()

	spool, dockerfile, err := d.spoolContext(req.Context)
	if err != nil {
		return "", err
	}
	defer os.Remove(spool.Name())
	defer spool.Close()
	if err := checkBaseImages(ctx, loader, dockerfile); err != nil {
		return "", err
	}

	tag := host.BuildTagPrefix + req.App + ":" + random.Hex(8)
	spec := &BuildSpec{
		Context:    spool,
		Dockerfile: "Dockerfile",
		Tag:        tag,
		Labels:     map[string]string{host.BuildLabelApp: req.App},
		Network:    d.cfg.AppNetwork,
		Memory:     req.Memory,
		CPUShares:  buildCPUShares,
	}
	begin := time.Now()
	if err := builder.BuildImage(ctx, spec, line); err != nil {
		if errors.Is(err, context.DeadlineExceeded) || (ctx.Err() == context.DeadlineExceeded && !errors.Is(err, ErrBuildFailed)) {
			return "", fmt.Errorf("%w: not done within %s", ErrBuildFailed, req.Timeout)
		}
		d.log.Info("image build failed", "app", req.App, "err", err)
		return "", err
	}
	info, err := loader.InspectImage(ctx, tag)
	if err != nil {
		return "", fmt.Errorf("inspect the built image: %w", err)
	}
	d.log.Info("image built", "app", req.App, "image", tag, "image_id", info.ID, "took", time.Since(begin).Round(time.Millisecond))
	return info.ID, nil
}

// spoolContext copies a build context to a file of the state directory
// (the build reads it after the Dockerfile has been checked) and returns
// it, rewound, with the Dockerfile it holds ("" when none).
func (d *Daemon) spoolContext(r io.Reader) (*os.File, string, error) {
	dir := filepath.Join(d.cfg.StateDir, "builds")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", fmt.Errorf("build spool: %w", err)
	}
	f, err := os.CreateTemp(dir, "context-*.tar")
	if err != nil {
		return nil, "", fmt.Errorf("build spool: %w", err)
	}
	fail := func(err error) (*os.File, string, error) {
		f.Close()
		os.Remove(f.Name())
		return nil, "", err
	}
	n, err := io.Copy(f, io.LimitReader(r, host.MaxBuildContext+1))
	if err != nil {
		return fail(fmt.Errorf("read the build context: %w", err))
	}
	if n > host.MaxBuildContext {
		return fail(httpjson.Errorf(httpjson.CodeRequestTooLarge, "a build context may be at most %d bytes", host.MaxBuildContext))
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail(err)
	}
	dockerfile, err := readDockerfile(f)
	if err != nil {
		return fail(httpjson.ValidationError("context", "not a tar: %v", err))
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail(err)
	}
	return f, dockerfile, nil
}

// maxDockerfile bounds the Dockerfile read for its images.
const maxDockerfile = 1 << 20

// readDockerfile returns the Dockerfile at the root of a context tar.
func readDockerfile(r io.Reader) (string, error) {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		if path.Clean(strings.TrimPrefix(hdr.Name, "/")) != "Dockerfile" || hdr.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(tr, maxDockerfile))
		return string(b), err
	}
}

// checkBaseImages makes sure that every image dockerfile builds on or
// copies from is on the node, since Docker's classic builder pulls one
// that is not (PullParent only forces a pull of one that is).
func checkBaseImages(ctx context.Context, loader ImageLoader, dockerfile string) error {
	refs, err := dockerfileImages(dockerfile)
	if err != nil {
		return httpjson.ValidationError("Dockerfile", "%v", err)
	}
	for _, ref := range refs {
		_, err := loader.InspectImage(ctx, ref)
		if errors.Is(err, ErrImageNotFound) {
			return httpjson.ValidationError("Dockerfile", "image %s is not on this host, and builds pull no image: build on one of the cluster's images", ref)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// dockerfileImages returns the images a Dockerfile's FROM and COPY
// --from instructions name, leaving out its own stages and scratch. A
// FROM may name its image with an ARG declared before the first FROM:
// builds pass no build arguments, so the ARG's default is the image. A
// variable without a default is refused: the image would only be known
// to the builder.
func dockerfileImages(dockerfile string) ([]string, error) {
	var refs []string
	globalArgs := map[string]string{} // ARGs before the first FROM, with their defaults
	seenFrom := false
	stages := map[string]bool{}
	escape := `\`
	sc := bufio.NewScanner(strings.NewReader(dockerfile))
	sc.Buffer(make([]byte, 64<<10), maxDockerfile)
	var logical strings.Builder
	directives := true
	var lines []string
	for sc.Scan() {
		text := strings.TrimSpace(sc.Text())
		// Parser directives (# escape=`) come first, before any comment.
		if directives && strings.HasPrefix(text, "#") {
			k, v, ok := strings.Cut(strings.TrimSpace(text[1:]), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "escape") {
				escape = strings.TrimSpace(v)
			}
		}
		directives = directives && strings.HasPrefix(text, "#")
		if strings.HasPrefix(text, "#") || (text == "" && logical.Len() == 0) {
			continue
		}
		if cont, ok := strings.CutSuffix(text, escape); ok {
			logical.WriteString(cont + " ")
			continue
		}
		logical.WriteString(text)
		lines = append(lines, logical.String())
		logical.Reset()
	}
	if logical.Len() > 0 {
		lines = append(lines, logical.String())
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		args := f[1:]
		switch strings.ToUpper(f[0]) {
		case "ARG":
			if seenFrom {
				continue
			}
			for _, a := range args {
				if name, def, ok := strings.Cut(a, "="); ok {
					globalArgs[name] = strings.Trim(def, `"'`)
				}
			}
		case "FROM":
			seenFrom = true
			var image string
			for _, a := range args {
				if strings.HasPrefix(a, "--") {
					continue
				}
				image = a
				break
			}
			if image == "" {
				continue // Docker says what is wrong
			}
			if strings.Contains(image, "$") {
				missing := false
				expanded := os.Expand(image, func(name string) string {
					v, ok := globalArgs[name]
					missing = missing || !ok || v == ""
					return v
				})
				if missing || strings.Contains(expanded, "$") {
					return nil, fmt.Errorf("FROM %s: name the image, or give the ARG a default; builds on flynn-host take no build arguments", image)
				}
				image = expanded
			}
			if !stages[strings.ToLower(image)] && strings.ToLower(image) != "scratch" && !slices.Contains(refs, image) {
				refs = append(refs, image)
			}
			// A stage's name is known from the next instruction on.
			for i := range args {
				if i+1 < len(args) && strings.EqualFold(args[i], "AS") {
					stages[strings.ToLower(args[i+1])] = true
				}
			}
		case "COPY":
			for _, a := range args {
				from, ok := strings.CutPrefix(a, "--from=")
				if !ok {
					continue
				}
				if strings.Contains(from, "$") {
					return nil, fmt.Errorf("COPY --from=%s: name the stage or image; builds on flynn-host take no build arguments", from)
				}
				if isIndex(from) || stages[strings.ToLower(from)] || slices.Contains(refs, from) {
					continue
				}
				refs = append(refs, from)
			}
		}
	}
	return refs, nil
}

// isIndex reports whether s is a stage's number.
func isIndex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// SaveBuiltImage writes the image id, which this host must have built
// (it carries host.BuildLabelApp and a host.BuildTagPrefix tag; any other
// image is not_found), as `docker save` does, to w, calling started just
// before the first byte. Once it is saved the image's build tags are
// removed: the release's archive in the blobstore is the source of truth,
// and a host that runs the image loads it from there under a name of its
// own (archive.go), so the node keeps no copy for nothing; a second save
// of the same build is not_found.
func (d *Daemon) SaveBuiltImage(ctx context.Context, id string, started func(), w io.Writer) error {
	builder, ok := d.backend.(ImageBuilder)
	loader, ok2 := d.backend.(ImageLoader)
	if !ok || !ok2 {
		return httpjson.NotFound("this host builds no images")
	}
	notFound := httpjson.Errorf(httpjson.CodeNotFound, "no image %s built on this host", id)
	if !strings.HasPrefix(id, "sha256:") {
		return notFound
	}
	info, err := loader.InspectImage(ctx, id)
	if errors.Is(err, ErrImageNotFound) {
		return notFound
	}
	if err != nil {
		return err
	}
	var tags []string
	for _, t := range info.Tags {
		if strings.HasPrefix(t, host.BuildTagPrefix) {
			tags = append(tags, t)
		}
	}
	if info.Labels[host.BuildLabelApp] == "" || len(tags) == 0 {
		return notFound
	}
	started()
	if err := builder.SaveImage(ctx, id, w); err != nil {
		return fmt.Errorf("save %s: %w", id, err)
	}
	for _, t := range tags {
		if err := builder.RemoveImage(ctx, t); err != nil {
			d.log.Warn("remove a saved build's tag", "image", t, "err", err)
		}
	}
	return nil
}
