package gitreceive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"strings"
	"sync"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/slugbuilder"
)

// procfileMaxSize bounds the Procfile a push of a Dockerfile app reads
// into memory: a Procfile is a few lines.
const procfileMaxSize = 1 << 20

// errBuildEnded stops the sending of the tree once the image build has
// ended without reading all of it.
var errBuildEnded = errors.New("the image build ended")

// buildImage has the cluster build the Dockerfile at the root of commit's
// tree (the controller's POST /apps/:id/images/build, which a host runs
// `docker build` for) and returns the artifact of the image, stored as an
// uploaded image is. The build context is `git archive` of the commit,
// streamed as it is made; the build's output is passed on indented, as a
// buildpack's is. ctx bounds the build: ending it stops the build.
//
// Neither the cluster's build env nor the app's config vars are passed as
// build args: an ARG's value stays in the image's history, readable by
// anyone with the image, and both may hold credentials (mirror tokens,
// API keys). The app gets its config vars when its jobs run, as a
// buildpack app does; a Dockerfile's RUN steps see only what the
// Dockerfile itself sets.
func (b *builder) buildImage(ctx context.Context, p *push, commit string, gitEnv map[string]string, out io.Writer, log *slog.Logger) (*controller.Artifact, error) {
	fmt.Fprintf(out, "-----> Building the Dockerfile on the cluster...\n")
	pr, pw := io.Pipe()
	var (
		wg      sync.WaitGroup
		sendErr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		sendErr = b.archiveTree(ctx, p.repo, commit, gitEnv, func(data []byte) error {
			_, err := pw.Write(data)
			return err
		})
		// nil ends the context; an error fails the upload, and so the build.
		pw.CloseWithError(sendErr)
	}()
	lines := &lineWriter{out: out}
	art, err := b.c.BuildImage(ctx, p.app.ID, pr, func(line string) {
		lines.write([]byte("       " + strings.TrimRight(line, "\r\n") + "\n"))
	})
	// A build that ended early (an error, ctx) may not have read the whole
	// tree: the sender, blocked on the pipe, gives up.
	pr.CloseWithError(errBuildEnded)
	wg.Wait()
	if sendErr != nil && !errors.Is(sendErr, errBuildEnded) && ctx.Err() == nil {
		// The build failed for want of its context: that is the cause.
		return nil, fmt.Errorf("send the build context: %w", sendErr)
	}
	if err != nil {
		return nil, err
	}
	log.Info("image built", "artifact", art.ID, "image", art.Meta[controller.ImageMetaID])
	return art, nil
}

// imageProcfile reads and parses the Procfile of commit for an image
// build; nil when the commit has none. It is read before the image is
// built, so that a malformed one fails the push at once.
func (b *builder) imageProcfile(ctx context.Context, repo, commit string, gitEnv map[string]string, log *slog.Logger) (map[string]string, error) {
	data, err := b.readTreeFile(ctx, repo, commit, gitEnv, "Procfile", procfileMaxSize)
	switch {
	case errors.Is(err, errTooLarge):
		return nil, &userError{fmt.Sprintf("Procfile: larger than %d MiB", procfileMaxSize>>20)}
	case err != nil:
		return nil, b.internal(log, "read the Procfile", err)
	case data == nil:
		return nil, nil
	}
	types, err := slugbuilder.ParseProcfile(bytes.NewReader(data))
	if err != nil {
		return nil, &userError{err.Error()}
	}
	return types, nil
}

// imageRelease fills in pp, the release of a push, for an image built
// from the app's Dockerfile: the image's artifact, and process types as
// controller.ImageProcesses makes them of the Procfile (none: a web type
// running the image's command). A Procfile's release type is the release
// phase, run in the image as `/bin/sh -c CMD` (there is no slugrunner to
// resolve `start release`), never a process type; a Procfile with no
// other type leaves the image's command as the web type.
func imageRelease(pp *pushPatch, appName string, res *buildResult) (map[string]controller.ProcessType, error) {
	procfile := maps.Clone(res.procfile)
	if cmd, ok := procfile[ReleaseProcessType]; ok {
		delete(procfile, ReleaseProcessType)
		pp.releaseArgs = imageCommand(cmd)
	}
	if len(procfile) == 0 {
		procfile = nil
	}
	processes, err := controller.ImageProcesses(appName, res.image, procfile, false)
	if err != nil {
		return nil, err
	}
	pp.artifactID = res.image.ID
	pp.image = true
	return processes, nil
}

// imageCommand is a one-off job's args that run line, a command line, in
// an image: through its entrypoint, when it has one, as the image's
// process types run theirs (controller.ImageProcesses).
func imageCommand(line string) []string { return []string{"/bin/sh", "-c", line} }
