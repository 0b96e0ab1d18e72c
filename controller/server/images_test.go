package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/blobstore"
	"github.com/openflynn/flynn/blobstore/signed"
	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/host/hosttest"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/tartest"
)

// memImages is an ImageStore in memory. A Put that fail names fails
// once it has read half of its body.
type memImages struct {
	mu    sync.Mutex
	blobs map[string][]byte
	fail  error
}

var _ ImageStore = (*memImages)(nil)

func (m *memImages) Put(_ context.Context, path string, r io.Reader) (*blobstore.Info, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	m.blobs[path] = data
	return &blobstore.Info{Path: path, Size: int64(len(data))}, nil
}

func (m *memImages) Delete(_ context.Context, path string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.blobs[path]; !ok {
		return blobstore.ErrNotFound
	}
	delete(m.blobs, path)
	return nil
}

func (m *memImages) URL(path string) string { return "http://blobstore.test/" + path }

func (m *memImages) paths() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for p := range m.blobs {
		out = append(out, p)
	}
	return out
}

func newImageHarness(t *testing.T, max int64) (*harness, *memImages) {
	t.Helper()
	images := &memImages{blobs: map[string][]byte{}}
	h := newHarnessWith(t, func(o *Options) {
		o.Images, o.MaxImageSize = images, max
	})
	return h, images
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// testImageConfig is an image config exposing 7000 and 53/udp, running
// as 1000.
var testImageConfig = []byte(`{"architecture":"amd64","os":"linux","config":{"ExposedPorts":{"7000/tcp":{},"53/udp":{},"10000/tcp":{}},` +
	`"Entrypoint":["/bin/sh","-c"],"Cmd":["python3 /app/echo.py"],"User":"1000","WorkingDir":"/app"},"rootfs":{"type":"layers","diff_ids":["sha256:aa"]}}`)

// ociArchive is an OCI layout as Docker 25 and later save it, its blobs
// first: an index pointing to a manifest, with an attestation beside the
// image, and (unless bare) a manifest.json too.
func ociArchive(t testing.TB, bare bool) []byte {
	t.Helper()
	layer := tartest.Of(t, tartest.File{Name: "hello", Data: []byte("hi")})
	manifest, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"digest": digest(testImageConfig)}, "layers": []any{map[string]any{"digest": digest(layer)}}})
	inner, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []any{
		map[string]any{"digest": digest(manifest), "platform": map[string]string{"os": "linux", "architecture": "amd64"}},
		map[string]any{"digest": "sha256:00", "annotations": map[string]string{"vnd.docker.reference.type": "attestation-manifest"}},
	}})
	index, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []any{
		map[string]any{"digest": digest(inner), "annotations": map[string]string{"io.containerd.image.name": "docker.io/library/echo:1"}},
	}})
	blob := func(b []byte) tartest.File {
		return tartest.File{Name: "blobs/sha256/" + strings.TrimPrefix(digest(b), "sha256:"), Data: b}
	}
	files := []tartest.File{blob(layer), blob(testImageConfig), blob(manifest), blob(inner), {Name: "index.json", Data: index}, {Name: "oci-layout", Data: []byte(`{"imageLayoutVersion":"1.0.0"}`)}}
	if !bare {
		mj, _ := json.Marshal([]any{map[string]any{"Config": "blobs/sha256/" + strings.TrimPrefix(digest(testImageConfig), "sha256:"), "RepoTags": []string{"echo:1"}}})
		files = append(files, tartest.File{Name: "manifest.json", Data: mj})
	}
	return tartest.Of(t, files...)
}

// legacyArchive is what Docker before 25 saves: a directory per layer,
// the config, manifest.json and repositories.
func legacyArchive(t testing.TB) []byte {
	t.Helper()
	id := strings.TrimPrefix(digest(testImageConfig), "sha256:")
	mj, _ := json.Marshal([]any{map[string]any{"Config": id + ".json", "RepoTags": []string{"echo:1"}, "Layers": []string{"abc/layer.tar"}}})
	return tartest.Of(t,
		tartest.File{Name: "abc/VERSION", Data: []byte("1.0")},
		tartest.File{Name: "abc/json", Data: []byte(`{"id":"abc"}`)},
		tartest.File{Name: "abc/layer.tar", Data: tartest.Of(t, tartest.File{Name: "hello", Data: []byte("hi")})},
		tartest.File{Name: id + ".json", Data: testImageConfig},
		tartest.File{Name: "manifest.json", Data: mj},
		tartest.File{Name: "repositories", Data: []byte(`{"echo":{"1":"abc"}}`)},
	)
}

func TestImageUpload(t *testing.T) {
	wantMeta := map[string]string{
		controller.ImageMetaID:           digest(testImageConfig),
		controller.ImageMetaName:         "echo:1",
		controller.ImageMetaExposedPorts: `["53/udp","7000/tcp","10000/tcp"]`,
		controller.ImageMetaEntrypoint:   `["/bin/sh","-c"]`,
		controller.ImageMetaCmd:          `["python3 /app/echo.py"]`,
		controller.ImageMetaUser:         "1000",
		controller.ImageMetaWorkingDir:   "/app",
	}
	tests := []struct {
		name    string
		archive []byte
		name2   string // the image name, when not echo:1
	}{
		{name: "legacy (Docker before 25)", archive: legacyArchive(t)},
		{name: "OCI layout with manifest.json (Docker 25+)", archive: ociArchive(t, false)},
		{name: "OCI layout alone", archive: ociArchive(t, true), name2: "docker.io/library/echo:1"},
	}
	h, images := newImageHarness(t, 0)
	app := h.app(t, "echo")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			art, err := h.client.UploadImage(t.Context(), app.Name, bytes.NewReader(tt.archive), -1)
			if err != nil {
				t.Fatal(err)
			}
			want := wantMeta
			if tt.name2 != "" {
				want = map[string]string{}
				for k, v := range wantMeta {
					want[k] = v
				}
				want[controller.ImageMetaName] = tt.name2
			}
			if fmt.Sprint(art.Meta) != fmt.Sprint(want) {
				t.Errorf("meta = %v\nwant   %v", art.Meta, want)
			}
			checkImageArtifact(t, h, images, app, art, tt.archive)
		})
	}
}

// checkImageArtifact checks that art is stored, and names archive in the
// blobstore by a GET URL signed for years.
func checkImageArtifact(t *testing.T, h *harness, images *memImages, app *controller.App, art *controller.Artifact, archive []byte) {
	t.Helper()
	if art.Type != controller.ArtifactTypeDockerArchive || art.ID == "" {
		t.Fatalf("artifact %+v, want a docker-archive", art)
	}
	if got, err := h.client.Artifact(t.Context(), art.ID); err != nil || got.URI != art.URI {
		t.Fatalf("stored artifact %+v, %v", got, err)
	}
	u, err := url.Parse(art.URI)
	if err != nil {
		t.Fatal(err)
	}
	blob := strings.TrimPrefix(u.Path, "/")
	if !strings.HasPrefix(blob, "apps/"+app.ID+"/images/") || !strings.HasSuffix(blob, ".tar") {
		t.Errorf("blob %s, want apps/%s/images/<uuid>.tar", blob, app.ID)
	}
	images.mu.Lock()
	stored := images.blobs[blob]
	images.mu.Unlock()
	if !bytes.Equal(stored, archive) {
		t.Errorf("stored %d bytes, want the archive's %d as sent", len(stored), len(archive))
	}
	g, err := signed.Verify(testKey, http.MethodGet, blob, u.RawQuery, time.Now())
	if err != nil || g.Path != blob || time.Until(g.Expires) < 9*365*24*time.Hour {
		t.Errorf("URL grants %+v (%v), want a GET of %s for years", g, err, blob)
	}
}

// TestImageUploadRefused: what is not one image archive, what is too
// large and what the blobstore does not take leave no blob and no
// artifact behind.
func TestImageUploadRefused(t *testing.T) {
	legacy := legacyArchive(t)
	tests := []struct {
		name     string
		body     []byte
		max      int64
		ctype    string
		fail     error
		wantCode httpjson.Code
		want     string
	}{
		{name: "not a tar", body: bytes.Repeat([]byte("not a tar "), 200), wantCode: httpjson.CodeValidation, want: "not a docker save archive"},
		{name: "empty", body: nil, wantCode: httpjson.CodeValidation, want: "neither manifest.json nor index.json"},
		{name: "a tar of something else", body: tartest.Of(t, tartest.File{Name: "README", Data: []byte("hi")}), wantCode: httpjson.CodeValidation, want: "not a docker save archive"},
		{name: "two images", body: tartest.Of(t, tartest.File{Name: "manifest.json", Data: []byte(`[{"Config":"a.json"},{"Config":"b.json"}]`)}), wantCode: httpjson.CodeValidation, want: "holds 2 images"},
		{name: "config missing", body: tartest.Of(t, tartest.File{Name: "manifest.json", Data: []byte(`[{"Config":"a.json"}]`)}), wantCode: httpjson.CodeValidation, want: "config a.json is not in it"},
		{name: "config is no config", body: tartest.Of(t, tartest.File{Name: "a.json", Data: []byte(`{}`)}, tartest.File{Name: "manifest.json", Data: []byte(`[{"Config":"a.json"}]`)}), wantCode: httpjson.CodeValidation, want: "a.json is no image config"},
		{name: "too large", body: legacy, max: int64(len(legacy)) - 100, wantCode: httpjson.CodeRequestTooLarge, want: "at most"},
		{name: "JSON", body: legacy, ctype: "application/json", wantCode: httpjson.CodeUnsupportedMedia, want: "application/x-tar"},
		{name: "blobstore full", body: legacy, fail: fmt.Errorf("put: %w", blobstore.ErrTooLarge), wantCode: httpjson.CodeRequestTooLarge, want: "blobstore"},
		{name: "blobstore down", body: legacy, fail: errors.New("connection refused"), wantCode: httpjson.CodeUnknown, want: "internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, images := newImageHarness(t, tt.max)
			images.fail = tt.fail
			app := h.app(t, "echo")
			var err error
			if tt.ctype != "" {
				err = rawRequestAs(t, h, testKey, http.MethodPost, "/apps/echo/images", tt.ctype, tt.body, nil)
			} else {
				// Chunked, as `flynn docker push` streams it: the limit
				// is found on the way.
				_, err = h.client.UploadImage(t.Context(), app.ID, bytes.NewReader(tt.body), -1)
			}
			var apiErr *httpjson.Error
			if !errors.As(err, &apiErr) || apiErr.Code != tt.wantCode || !strings.Contains(apiErr.Message, tt.want) {
				t.Fatalf("upload = %v, want %s with %q", err, tt.wantCode, tt.want)
			}
			if p := images.paths(); len(p) != 0 {
				t.Errorf("blobs left: %v", p)
			}
			if arts, err := h.client.Artifacts(t.Context()); err != nil || len(arts) != 0 {
				t.Errorf("artifacts %v, %v; want none", arts, err)
			}
		})
	}
	t.Run("too large, said up front", func(t *testing.T) {
		h, images := newImageHarness(t, 100)
		h.app(t, "echo")
		_, err := h.client.UploadImage(t.Context(), "echo", bytes.NewReader(legacy), int64(len(legacy)))
		if !httpjson.IsCode(err, httpjson.CodeRequestTooLarge) {
			t.Fatalf("upload = %v, want request_entity_too_large", err)
		}
		if p := images.paths(); len(p) != 0 {
			t.Errorf("blobs left: %v", p)
		}
	})
}

// TestImageUploadGuards: a person may not push to a system app, and a
// controller without a blobstore says it has none.
func TestImageUploadGuards(t *testing.T) {
	h, _ := newImageHarness(t, 0)
	person, _ := h.person(t, "alice")
	h.systemApp(t, "router")
	_, err := person.UploadImage(t.Context(), "router", bytes.NewReader(legacyArchive(t)), -1)
	if !httpjson.IsCode(err, httpjson.CodeForbidden) {
		t.Fatalf("person's upload to a system app = %v, want forbidden", err)
	}
	h.app(t, "mine")
	if _, err := person.UploadImage(t.Context(), "mine", bytes.NewReader(legacyArchive(t)), -1); err != nil {
		t.Fatalf("person's upload to an app: %v", err)
	}

	bare := newHarness(t)
	bare.app(t, "echo")
	if _, err := bare.client.UploadImage(t.Context(), "echo", bytes.NewReader(legacyArchive(t)), -1); !httpjson.IsCode(err, httpjson.CodeServiceUnavailable) {
		t.Fatalf("upload without a blobstore = %v, want service_unavailable", err)
	}
}

// TestImageUploadOfDockerSave: what this machine's Docker saves is read,
// whatever its version writes, and the artifact's image id is the one
// Docker gives the image.
func TestImageUploadOfDockerSave(t *testing.T) {
	dc := hosttest.Docker(t)
	ref := hosttest.TinyImage(t, dc, "EXPOSE 6379", "USER 1000:1000", "WORKDIR /data", `CMD ["/hello"]`)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	info, err := dc.ImageInspect(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := dc.ImageSave(ctx, []string{ref})
	if err != nil {
		t.Fatal(err)
	}
	archive, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	h, images := newImageHarness(t, 0)
	app := h.app(t, "tiny")
	art, err := client.New(h.url, testKey).UploadImage(ctx, app.ID, bytes.NewReader(archive), -1)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		controller.ImageMetaName:         ref,
		controller.ImageMetaExposedPorts: `["6379/tcp"]`,
		controller.ImageMetaCmd:          `["/hello"]`,
		controller.ImageMetaUser:         "1000:1000",
		controller.ImageMetaWorkingDir:   "/data",
	}
	for k, v := range want {
		if art.Meta[k] != v {
			t.Errorf("meta %s = %q, want %q", k, art.Meta[k], v)
		}
	}
	// Docker's image id is its config's digest, but with the containerd
	// image store of Docker 25+ (which saves an index.json), whose ids are
	// the manifests'.
	files, err := readImageFiles(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	if id := art.Meta[controller.ImageMetaID]; files["index.json"] == nil && id != info.ID {
		t.Errorf("image id %q, want Docker's %q", id, info.ID)
	}
	checkImageArtifact(t, h, images, app, art, archive)
}
