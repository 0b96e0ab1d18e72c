package server

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/openflynn/flynn/blobstore"
	"github.com/openflynn/flynn/blobstore/signed"
	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/iocount"
	"github.com/openflynn/flynn/pkg/random"
)

// POST /apps/:id/images takes an image as `docker save` writes it (a tar,
// application/x-tar) and makes an artifact of it that any host can run:
//
//	body ─► MaxBytesReader (Options.MaxImageSize: 413 past it)
//	  └─ tee ─► ImageStore.Put apps/<app id>/images/<uuid>.tar  (the blobstore)
//	        └─► tar reader: keeps manifest.json, index.json and small JSON files
//	              ─► the image's config ─► artifact {docker-archive, signed GET URL, meta}
//
// The archive is streamed, never held whole: only its small metadata files
// are kept, whatever order they come in (Docker 25 and later write an OCI
// layout, blobs first, with a manifest.json beside its index.json; earlier
// ones a directory per layer). An upload that fails, or is no image
// archive, leaves no blob and no artifact. The artifact's URI is a GET of
// the blob signed for ImageURLLifetime, which a host fetches and loads
// before the first job of it (see host/daemon's archive.go); the blob
// collector (controller/blobgc) keeps the blob as long as the app exists.

// ImageStore keeps uploaded image archives: the blobstore, of which
// *blobstore/client.Client is a client.
type ImageStore interface {
	// Put streams r to the blob at path.
	Put(ctx context.Context, path string, r io.Reader) (*blobstore.Info, error)
	// Delete removes a blob; blobstore.ErrNotFound when it is gone.
	Delete(ctx context.Context, path string) error
	// URL is the blob's URL, which the hosts must reach.
	URL(path string) string
}

// DefaultMaxImageSize is Options.MaxImageSize when zero.
const DefaultMaxImageSize int64 = 4 << 30

// ImageURLLifetime is how long the signed URL of an image artifact works:
// a release may run, restart or be rolled back to for as long as its app
// exists, and each host that starts its first job of it fetches the
// image then. It is gitreceive.SlugURLLifetime (ten years) for the same
// reason; the controller does not import the git server for a constant.
const ImageURLLifetime = 10 * 365 * 24 * time.Hour

// Bounds of what an upload keeps in memory while it streams.
const (
	// maxImageMetaFile is the largest file kept besides manifest.json and
	// index.json: image configs and manifests are a few KiB.
	maxImageMetaFile = 1 << 20
	// maxImageMetaTotal bounds all the files kept together.
	maxImageMetaTotal = 32 << 20
)

// errNotImageArchive is a body that is not one image as `docker save`
// writes it.
var errNotImageArchive = errors.New("not a docker save archive")

// uploadImage is POST /apps/:id/images.
func (s *Server) uploadImage(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	ctx := r.Context()
	if s.opts.Images == nil {
		return httpjson.Errorf(httpjson.CodeServiceUnavailable, "this controller has no blobstore to keep images in")
	}
	app, err := s.store.Apps.Get(ctx, ps.ByName("id"))
	if err != nil {
		return err
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || (mt != "application/x-tar" && mt != "application/octet-stream") {
			return httpjson.Errorf(httpjson.CodeUnsupportedMedia, "send the tar `docker save` writes, as application/x-tar, not %s", ct)
		}
	}
	limit := s.opts.MaxImageSize
	if limit <= 0 {
		limit = DefaultMaxImageSize
	}
	tooLarge := httpjson.Errorf(httpjson.CodeRequestTooLarge, "an image archive may be at most %d bytes", limit)
	if r.ContentLength > limit {
		return tooLarge
	}
	art, err := s.storeImageArtifact(ctx, app, http.MaxBytesReader(w, r.Body, limit))
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return tooLarge
	}
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusCreated, art)
	return nil
}

// storeImageArtifact stores body, an image as `docker save` writes it, as
// a blob of app's and makes the docker-archive artifact of it: what POST
// /apps/:id/images and POST /apps/:id/images/build (imagebuild.go) both
// answer. A body that is not an image archive, or too large for the
// blobstore, is an API error; a *http.MaxBytesError of body's is returned
// as it is. On any failure nothing is left stored.
func (s *Server) storeImageArtifact(ctx context.Context, app *controller.App, body io.Reader) (*controller.Artifact, error) {
	blob := path.Join("apps", app.ID, "images", random.UUID()+".tar")
	img, err := s.storeImage(ctx, blob, body)
	if err != nil {
		var maxErr *http.MaxBytesError
		switch {
		case errors.As(err, &maxErr):
			return nil, err
		case errors.Is(err, errNotImageArchive):
			return nil, httpjson.ValidationError("", "%v", err)
		case errors.Is(err, blobstore.ErrTooLarge):
			return nil, httpjson.Errorf(httpjson.CodeRequestTooLarge, "the blobstore refuses an archive this large")
		}
		return nil, fmt.Errorf("store image of %s: %w", app.Name, err)
	}
	uri, err := s.imageURL(blob)
	if err == nil {
		art := &controller.Artifact{Type: controller.ArtifactTypeDockerArchive, URI: uri, Meta: img.meta()}
		if err = s.store.Artifacts.Create(ctx, art); err == nil {
			s.logger.Info("image stored", "app", app.Name, "blob", blob, "artifact", art.ID, "image_id", img.id, "bytes", img.size)
			return art, nil
		}
	}
	s.deleteBlob(blob)
	return nil, err
}

// imageURL is the URL of blob that hosts fetch: signed for a GET until
// ImageURLLifetime from now, with the key the blobstore checks (plain,
// for a development blobstore without a key).
func (s *Server) imageURL(blob string) (string, error) {
	key := s.opts.BlobstoreKey
	if key == "" {
		key = s.opts.AuthKey
	}
	if key == "" {
		return s.opts.Images.URL(blob), nil
	}
	base := strings.TrimSuffix(s.opts.Images.URL(blob), "/"+blob)
	u, err := signed.URL(base, key, http.MethodGet, blob, time.Now().Add(ImageURLLifetime))
	if err != nil {
		return "", fmt.Errorf("sign the image's URL: %w", err)
	}
	return u, nil
}

// deleteBlob removes what an upload that failed stored, if anything.
func (s *Server) deleteBlob(blob string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.opts.Images.Delete(ctx, blob); err != nil && !errors.Is(err, blobstore.ErrNotFound) {
		s.logger.Warn("delete the blob of a failed image upload", "blob", blob, "err", err)
	}
}

// storeImage streams body to the blob at blob while it reads the image's
// config from it. On any failure the blob is deleted.
func (s *Server) storeImage(ctx context.Context, blob string, body io.Reader) (*imageConfig, error) {
	pr, pw := io.Pipe()
	putCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	putc := make(chan error, 1)
	go func() {
		_, err := s.opts.Images.Put(putCtx, blob, pr)
		// A blobstore that gave up unblocks the reader below.
		pr.CloseWithError(errors.Join(errBlobstoreGaveUp, err))
		putc <- err
	}()
	counted := &iocount.Reader{R: body}
	files, readErr := readImageFiles(io.TeeReader(counted, pw))
	if readErr == nil {
		// The tar's end and padding belong to the blob too.
		_, readErr = io.Copy(pw, counted)
	}
	if readErr != nil {
		pw.CloseWithError(readErr)
		cancel() // an upload cut short must not be stored
	} else {
		pw.Close()
	}
	putErr := <-putc
	// The reading's own failure first (the client's), unless it only saw
	// the blobstore give up.
	err := readErr
	switch {
	case readErr != nil && !errors.Is(readErr, errBlobstoreGaveUp):
	case putErr != nil:
		err = fmt.Errorf("store the archive: %w", putErr)
	}
	var img *imageConfig
	if err == nil {
		img, err = files.config()
	}
	if err != nil {
		s.deleteBlob(blob)
		return nil, err
	}
	img.size = counted.N
	return img, nil
}

// errBlobstoreGaveUp is what the upload's reading sees once the blobstore
// has stopped taking the archive.
var errBlobstoreGaveUp = errors.New("the blobstore stopped taking the archive")

// imageFiles are the small files of an image archive, by clean path.
type imageFiles map[string][]byte

// readImageFiles reads a tar archive to its end, keeping manifest.json,
// index.json and the small files that may be JSON (configs and OCI
// manifests; layers are skipped as they stream by).
func readImageFiles(r io.Reader) (imageFiles, error) {
	files := imageFiles{}
	kept := 0
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if errors.Is(err, tar.ErrHeader) || (errors.Is(err, io.ErrUnexpectedEOF) && len(files) == 0) {
				return nil, fmt.Errorf("%w: %v", errNotImageArchive, err)
			}
			return nil, err
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		meta := name == "manifest.json" || name == "index.json"
		if hdr.Typeflag != tar.TypeReg || (!meta && hdr.Size >= maxImageMetaFile) {
			continue
		}
		if meta && hdr.Size > 4*maxImageMetaFile {
			return nil, fmt.Errorf("%w: its %s is larger than %d bytes", errNotImageArchive, name, 4*maxImageMetaFile)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		if !meta && !bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
			continue // a small layer
		}
		if kept += len(data); kept > maxImageMetaTotal {
			return nil, fmt.Errorf("%w: more than %d bytes of small files", errNotImageArchive, maxImageMetaTotal)
		}
		files[name] = data
	}
	return files, nil
}

// imageConfig is what an uploaded image's config says.
type imageConfig struct {
	id   string // the config's digest
	name string // the name it was saved under, if any
	size int64  // the archive's size
	cfg  struct {
		Config struct {
			ExposedPorts map[string]struct{} `json:"ExposedPorts"`
			Entrypoint   []string            `json:"Entrypoint"`
			Cmd          []string            `json:"Cmd"`
			User         string              `json:"User"`
			WorkingDir   string              `json:"WorkingDir"`
		} `json:"config"`
		RootFS struct {
			Type string `json:"type"`
		} `json:"rootfs"`
	}
}

// config finds the archive's one image and reads its config: through
// manifest.json (every `docker save`), else through index.json (an OCI
// layout alone).
func (f imageFiles) config() (*imageConfig, error) {
	img := &imageConfig{}
	var configPath string
	switch {
	case f["manifest.json"] != nil:
		var images []struct {
			Config   string
			RepoTags []string
		}
		if err := json.Unmarshal(f["manifest.json"], &images); err != nil {
			return nil, fmt.Errorf("%w: manifest.json: %v", errNotImageArchive, err)
		}
		if len(images) != 1 {
			return nil, fmt.Errorf("%w: it holds %d images; push one at a time", errNotImageArchive, len(images))
		}
		configPath = path.Clean(images[0].Config)
		if len(images[0].RepoTags) > 0 {
			img.name = images[0].RepoTags[0]
		}
	case f["index.json"] != nil:
		var err error
		if configPath, img.name, err = f.ociConfig(); err != nil {
			return nil, fmt.Errorf("%w: %v", errNotImageArchive, err)
		}
	default:
		return nil, fmt.Errorf("%w: it has neither manifest.json nor index.json (make it with `docker save IMAGE`)", errNotImageArchive)
	}
	data, ok := f[configPath]
	if !ok {
		return nil, fmt.Errorf("%w: the image's config %s is not in it", errNotImageArchive, configPath)
	}
	if err := json.Unmarshal(data, &img.cfg); err != nil || img.cfg.RootFS.Type == "" {
		return nil, fmt.Errorf("%w: %s is no image config", errNotImageArchive, configPath)
	}
	sum := sha256.Sum256(data)
	img.id = "sha256:" + hex.EncodeToString(sum[:])
	return img, nil
}

// ociDescriptor is an entry of an OCI index or the config of a manifest.
type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Annotations map[string]string `json:"annotations"`
	Platform    *struct {
		OS string `json:"os"`
	} `json:"platform"`
}

// ociConfig follows index.json (and a nested index, as Docker 25+ and
// buildx write) to the image's manifest and returns its config's path
// and the image's name.
func (f imageFiles) ociConfig() (configPath, name string, err error) {
	doc := f["index.json"]
	for depth := 0; depth < 3; depth++ {
		var node struct {
			Manifests []ociDescriptor `json:"manifests"`
			Config    *ociDescriptor  `json:"config"`
		}
		if err := json.Unmarshal(doc, &node); err != nil {
			return "", "", fmt.Errorf("index or manifest: %v", err)
		}
		if node.Config != nil {
			return blobPath(node.Config.Digest), name, nil
		}
		// Attestations are not images; other platforms' images are.
		images := slices.DeleteFunc(node.Manifests, func(d ociDescriptor) bool {
			return d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" ||
				(d.Platform != nil && d.Platform.OS != "" && d.Platform.OS != "linux")
		})
		if len(images) == 0 {
			return "", "", errors.New("index.json names no image")
		}
		if depth == 0 && len(images) > 1 {
			return "", "", fmt.Errorf("it holds %d images; push one at a time", len(images))
		}
		if n := images[0].Annotations["io.containerd.image.name"]; n != "" && name == "" {
			name = n
		}
		var ok bool
		if doc, ok = f[blobPath(images[0].Digest)]; !ok {
			return "", "", fmt.Errorf("manifest %s is not in it", images[0].Digest)
		}
	}
	return "", "", errors.New("indexes nested too deep")
}

// blobPath is where an OCI layout keeps the blob of digest ("sha256:…").
func blobPath(digest string) string {
	alg, hex, _ := strings.Cut(digest, ":")
	return path.Join("blobs", alg, hex)
}

// meta is the artifact's meta: see controller.ImageMeta*.
func (img *imageConfig) meta() map[string]string {
	c := img.cfg.Config
	m := map[string]string{controller.ImageMetaID: img.id}
	if img.name != "" {
		m[controller.ImageMetaName] = img.name
	}
	exposed := make([]string, 0, len(c.ExposedPorts))
	for p := range c.ExposedPorts {
		exposed = append(exposed, p)
	}
	// By port number: "6379/tcp", "7000-7010/tcp", "53/udp".
	number := func(p string) int {
		num, _, _ := strings.Cut(p, "/")
		num, _, _ = strings.Cut(num, "-")
		n, _ := strconv.Atoi(num)
		return n
	}
	slices.SortFunc(exposed, func(a, b string) int {
		if na, nb := number(a), number(b); na != nb {
			return na - nb
		}
		return strings.Compare(a, b)
	})
	list := func(key string, v []string) {
		if v != nil {
			b, _ := json.Marshal(v)
			m[key] = string(b)
		}
	}
	list(controller.ImageMetaExposedPorts, exposed)
	list(controller.ImageMetaEntrypoint, c.Entrypoint)
	list(controller.ImageMetaCmd, c.Cmd)
	if c.User != "" {
		m[controller.ImageMetaUser] = c.User
	}
	if c.WorkingDir != "" {
		m[controller.ImageMetaWorkingDir] = c.WorkingDir
	}
	return m
}
