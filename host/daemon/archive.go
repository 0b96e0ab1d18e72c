package daemon

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// A job whose artifact is an http(s) URL runs the image of the archive
// there, what `docker save` writes (the controller keeps the ones `flynn
// docker push` uploads in the blobstore and hands out signed URLs):
//
//	jobImage ─► image flynn-archive/<hash of the URL>:latest on the node? ─► yes: run it
//	   │ no
//	   └─► loadArchive (one per name; other jobs of it wait for it)
//	         GET the URL (ArchiveClient, ArchiveTimeout, MaxArchiveSize)
//	           ─► rewriteArchive: the image is named flynn-archive/…, no other name
//	           ─► ImageLoader.LoadImage (docker load)
//
// The name depends on the URL without its query (a signed URL's
// signature), so the image is found again under it after flynn-host
// restarts, and a URL signed again still names the same image. The load
// runs on the daemon's own context: a job whose request gives up (the
// scheduler's timeout), or that waited ArchiveWait for it and was refused
// to be tried again, leaves it going, and the next try finds the image.
//
// The archive's own names (its manifest's RepoTags, the legacy
// "repositories" file, an OCI index's name annotations) never reach the
// node: an archive naming itself flynn/controller would otherwise replace
// the platform's image that its jobs on the host's network run. The garbage
// collector (gc.go) removes a loaded image no container uses once it is
// old enough; the next job of it finds it missing and loads it again, as
// above. Docker refuses to remove an image a container uses.

// Defaults of the archive bounds (see Config).
const (
	// DefaultArchiveTimeout leaves time for a large image over a slow
	// network and its unpacking.
	DefaultArchiveTimeout = 20 * time.Minute
	// DefaultMaxArchiveSize is the controller's default bound of an
	// upload (4 GiB).
	DefaultMaxArchiveSize int64 = 4 << 30
	// DefaultArchiveWait is well within the scheduler's bound of a
	// host's share of a round (30 s).
	DefaultArchiveWait = 10 * time.Second
)

// archivePrefix is the repository of the names loaded archives get.
const archivePrefix = "flynn-archive/"

// maxArchiveMeta bounds the archive's files that are read whole to be
// renamed (manifest.json, index.json).
const maxArchiveMeta = 4 << 20

// resolvedImage is the image a job's container runs, as resolved on this node.
type resolvedImage struct {
	// name is the image's reference on the node.
	name string
	// user is the user the job asks for or, for an archive's image when
	// the job asks for none, the image's own (appUser still makes it
	// unprivileged).
	user string
}

// archiveLoad is one load under way; err is set before done closes.
type archiveLoad struct {
	done chan struct{}
	err  error
}

// archiveRef is the node's name of the image of the archive at u.
func archiveRef(u *url.URL) string {
	sum := sha256.Sum256([]byte(host.RedactURL(u)))
	return archivePrefix + hex.EncodeToString(sum[:16]) + ":latest"
}

// defaultArchiveClient is Config.ArchiveClient's default. It has no
// overall timeout: the fetch is bounded by ArchiveTimeout.
func defaultArchiveClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: time.Minute,
		IdleConnTimeout:       90 * time.Second,
	}}
}

// jobImage returns the image jb runs, loading its archive first when its
// artifact is an archive's URL and the node does not have its image yet.
// The errors are API errors that name the archive without its query.
func (d *Daemon) jobImage(ctx context.Context, jb *host.Job) (resolvedImage, error) {
	img := resolvedImage{name: jb.Artifact, user: jb.Config.User}
	if !strings.Contains(jb.Artifact, "://") {
		return img, nil
	}
	u, err := host.ArchiveURL(jb.Artifact)
	if err != nil {
		return img, httpjson.ValidationError("artifact", "%v", err)
	}
	loader, ok := d.backend.(ImageLoader)
	if !ok {
		return img, httpjson.ValidationError("artifact", "this host cannot load image archives (%s)", host.RedactURL(u))
	}
	img.name = archiveRef(u)
	info, err := loader.InspectImage(ctx, img.name)
	if errors.Is(err, ErrImageNotFound) {
		if err := d.loadArchive(ctx, loader, u, img.name); err != nil {
			return img, err
		}
		info, err = loader.InspectImage(ctx, img.name)
		if errors.Is(err, ErrImageNotFound) {
			return img, httpjson.ValidationError("artifact", "image archive %s: loaded, but it holds no image (is it what `docker save` writes?)", host.RedactURL(u))
		}
	}
	if err != nil {
		return img, fmt.Errorf("image of archive %s: %w", host.RedactURL(u), err)
	}
	if img.user == "" {
		img.user = info.User
	}
	return img, nil
}

// loadArchive loads the archive at u as the image ref, or waits for the
// load of it under way, until it is done or ctx ends.
func (d *Daemon) loadArchive(ctx context.Context, loader ImageLoader, u *url.URL, ref string) error {
	d.mu.Lock()
	l, ok := d.loads[ref]
	if !ok {
		l = &archiveLoad{done: make(chan struct{})}
		d.loads[ref] = l
		lctx, cancel := d.lifetime()
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			defer cancel()
			lctx, stop := context.WithTimeout(lctx, d.cfg.ArchiveTimeout)
			defer stop()
			begin := time.Now()
			n, err := d.fetchArchive(lctx, loader, u, ref)
			if err != nil {
				d.log.Warn("image archive not loaded", "archive", host.RedactURL(u), "image", ref, "bytes", n, "err", err)
				err = archiveError(lctx, u, err)
			} else {
				d.log.Info("image archive loaded", "archive", host.RedactURL(u), "image", ref, "bytes", n, "took", time.Since(begin).Round(time.Millisecond))
			}
			d.mu.Lock()
			delete(d.loads, ref)
			l.err = err
			close(l.done)
			d.mu.Unlock()
		}()
	}
	d.mu.Unlock()
	wait := time.NewTimer(d.cfg.ArchiveWait)
	defer wait.Stop()
	select {
	case <-l.done:
		return l.err
	case <-ctx.Done():
		return ctx.Err()
	case <-wait.C:
		e := httpjson.Errorf(httpjson.CodeServiceUnavailable, "image archive %s is still loading on this host; try again shortly", host.RedactURL(u))
		e.Retry = true
		return e
	}
}

// Failures of a fetch that trying again will not mend.
var (
	errArchiveRefused  = errors.New("the archive is gone or its URL no longer valid")
	errArchiveTooLarge = errors.New("too large")
	errNotArchive      = errors.New("not an image archive")
)

// archiveError is the API error of a load that failed under ctx: a
// validation error when trying again cannot help (the blobstore refused
// the URL, the archive is too large or not one), else
// service_unavailable, to be tried again.
func archiveError(ctx context.Context, u *url.URL, err error) error {
	name := host.RedactURL(u)
	switch {
	case errors.Is(err, errArchiveRefused), errors.Is(err, errArchiveTooLarge), errors.Is(err, errNotArchive):
		return httpjson.ValidationError("artifact", "image archive %s: %v", name, err)
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		e := httpjson.Errorf(httpjson.CodeServiceUnavailable, "image archive %s: not loaded within the host's time limit", name)
		e.Retry = true
		return e
	}
	e := httpjson.Errorf(httpjson.CodeServiceUnavailable, "image archive %s: %v", name, err)
	e.Retry = true
	return e
}

// fetchArchive fetches the archive at u and loads it, renamed ref, and
// returns how many bytes it read. Its errors never hold u's query.
func (d *Daemon) fetchArchive(ctx context.Context, loader ImageLoader, u *url.URL, ref string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, fmt.Errorf("%w: %s", errNotArchive, "bad URL")
	}
	resp, err := d.cfg.ArchiveClient.Do(req)
	if err != nil {
		// A *url.Error quotes the whole URL, signature and all.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, fmt.Errorf("fetch: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode/100 == 4:
		// 403 is an expired or bad signature, 404 a deleted blob.
		return 0, fmt.Errorf("fetch: the server answered %s: %w", resp.Status, errArchiveRefused)
	case resp.StatusCode != http.StatusOK:
		return 0, fmt.Errorf("fetch: the server answered %s", resp.Status)
	case resp.ContentLength > d.cfg.MaxArchiveSize:
		return 0, fmt.Errorf("%w: %d bytes, more than this host's limit of %d", errArchiveTooLarge, resp.ContentLength, d.cfg.MaxArchiveSize)
	}
	body := &boundedReader{r: resp.Body, left: d.cfg.MaxArchiveSize, limit: d.cfg.MaxArchiveSize}
	pr, pw := io.Pipe()
	rewritten := make(chan error, 1)
	go func() {
		err := rewriteArchive(pw, body, ref)
		pw.CloseWithError(err)
		rewritten <- err
	}()
	loadErr := loader.LoadImage(ctx, pr)
	// Whatever the engine left unread (the archive's end blocks) ends
	// the rewrite.
	pr.CloseWithError(errLoadEnded)
	rewriteErr := <-rewritten
	n := d.cfg.MaxArchiveSize - body.left
	switch {
	case rewriteErr != nil && !errors.Is(rewriteErr, errLoadEnded) && !errors.Is(rewriteErr, io.ErrClosedPipe):
		// The archive's fault or the fetch's, which the engine saw as
		// an upload cut short.
		return n, rewriteErr
	case loadErr != nil:
		return n, fmt.Errorf("load: %w", loadErr)
	}
	return n, nil
}

// errLoadEnded ends the copy to an engine that stopped reading.
var errLoadEnded = errors.New("the engine's load ended")

// boundedReader reads at most left bytes of limit; one more is
// errArchiveTooLarge.
type boundedReader struct {
	r           io.Reader
	left, limit int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.left <= 0 {
		// Anything past the bound makes the archive too large.
		var one [1]byte
		n, err := b.r.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("%w: more than this host's limit of %d bytes", errArchiveTooLarge, b.limit)
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

// rewriteArchive copies the tar archive r to w, with its one image named
// ref and no other name: manifest.json's RepoTags, the legacy
// "repositories" file (left out) and index.json's name annotations.
func rewriteArchive(w io.Writer, r io.Reader, ref string) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	named := false
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if errors.Is(err, tar.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%w: %v", errNotArchive, err)
			}
			return err
		}
		var rename func([]byte, string) ([]byte, error)
		switch path.Clean(strings.TrimPrefix(hdr.Name, "./")) {
		case "repositories":
			continue
		case "manifest.json":
			rename = renameManifest
		case "index.json":
			rename = renameIndex
		}
		if rename == nil || hdr.Typeflag != tar.TypeReg {
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if _, err := io.Copy(tw, tr); err != nil {
				return err
			}
			continue
		}
		if hdr.Size > maxArchiveMeta {
			return fmt.Errorf("%w: its %s is larger than %d bytes", errNotArchive, hdr.Name, maxArchiveMeta)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		if data, err = rename(data, ref); err != nil {
			return fmt.Errorf("%w: %s: %v", errNotArchive, hdr.Name, err)
		}
		named = true
		hdr.Size = int64(len(data))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if !named {
		return fmt.Errorf("%w: it has neither manifest.json nor index.json (make it with `docker save IMAGE`)", errNotArchive)
	}
	return tw.Close()
}

// renameManifest gives the one image of a `docker save` manifest the name
// ref and no other.
func renameManifest(data []byte, ref string) ([]byte, error) {
	var images []map[string]json.RawMessage
	if err := json.Unmarshal(data, &images); err != nil {
		return nil, fmt.Errorf("not a docker save manifest: %v", err)
	}
	if len(images) != 1 || images[0] == nil {
		return nil, fmt.Errorf("it holds %d images; an artifact is one image", len(images))
	}
	images[0]["RepoTags"], _ = json.Marshal([]string{ref})
	return json.Marshal(images)
}

// OCI annotations that name an image (Docker 25 and later write them in
// index.json, and load the image under them).
const (
	annotationImageName = "io.containerd.image.name"
	annotationRefName   = "org.opencontainers.image.ref.name"
)

// renameIndex gives the one image of an OCI index the name ref, and any
// other image none.
func renameIndex(data []byte, ref string) ([]byte, error) {
	var index map[string]json.RawMessage
	if err := json.Unmarshal(data, &index); err != nil {
		return nil, fmt.Errorf("not an OCI index: %v", err)
	}
	var manifests []map[string]json.RawMessage
	if raw, ok := index["manifests"]; ok {
		if err := json.Unmarshal(raw, &manifests); err != nil {
			return nil, fmt.Errorf("not an OCI index: %v", err)
		}
	}
	repo, tag, _ := strings.Cut(ref, ":")
	for _, m := range manifests {
		if m == nil {
			return nil, errors.New("not an OCI index: a manifest is null")
		}
		annotations := map[string]string{}
		if raw, ok := m["annotations"]; ok {
			if err := json.Unmarshal(raw, &annotations); err != nil {
				return nil, fmt.Errorf("not an OCI index: %v", err)
			}
			if annotations == nil { // "annotations": null
				annotations = map[string]string{}
			}
		}
		delete(annotations, annotationImageName)
		delete(annotations, annotationRefName)
		if len(manifests) == 1 {
			annotations[annotationImageName] = "docker.io/" + repo + ":" + tag
			annotations[annotationRefName] = tag
		}
		m["annotations"], _ = json.Marshal(annotations)
	}
	index["manifests"], _ = json.Marshal(manifests)
	return json.Marshal(index)
}
