package daemon

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
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/tartest"
)

func readTar(t testing.TB, b []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[hdr.Name] = data
	}
}

// savedImage is a legacy `docker save` archive (Docker before 25) of one
// image with user and tags; its layer is layer.
func savedImage(t testing.TB, user string, tags ...string) []byte {
	t.Helper()
	config, _ := json.Marshal(map[string]any{"config": map[string]any{"User": user, "Cmd": []string{"run"}}, "os": "linux"})
	sum := sha256.Sum256(config)
	id := hex.EncodeToString(sum[:])
	manifest, _ := json.Marshal([]map[string]any{{"Config": id + ".json", "RepoTags": tags, "Layers": []string{"abc/layer.tar"}}})
	return tartest.Of(t,
		tartest.File{Name: "abc/VERSION", Data: []byte("1.0")},
		tartest.File{Name: "abc/layer.tar", Data: []byte("the layer")},
		tartest.File{Name: id + ".json", Data: config},
		tartest.File{Name: "manifest.json", Data: manifest},
		tartest.File{Name: "repositories", Data: []byte(`{"flynn/controller":{"latest":"abc"}}`)},
	)
}

func TestRewriteArchive(t *testing.T) {
	const ref = "flynn-archive/0123:latest"
	ociIndex := func(names ...string) []byte {
		var ms []map[string]any
		for _, n := range names {
			ms = append(ms, map[string]any{"digest": "sha256:aa", "annotations": map[string]string{annotationImageName: n, annotationRefName: "latest", "other": "kept"}})
		}
		b, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": ms})
		return b
	}
	tests := []struct {
		name    string
		in      []byte
		wantErr string
		check   func(t *testing.T, files map[string][]byte)
	}{
		{
			name: "legacy archive named flynn/controller",
			in:   savedImage(t, "", "flynn/controller:latest", "other:1"),
			check: func(t *testing.T, files map[string][]byte) {
				var m []map[string]any
				if err := json.Unmarshal(files["manifest.json"], &m); err != nil {
					t.Fatal(err)
				}
				if got := fmt.Sprint(m[0]["RepoTags"]); got != "["+ref+"]" {
					t.Errorf("RepoTags = %s, want [%s]", got, ref)
				}
				if m[0]["Config"] == nil || m[0]["Layers"] == nil {
					t.Errorf("manifest lost its other fields: %v", m)
				}
				if _, ok := files["repositories"]; ok {
					t.Error("the legacy repositories file, which names the image too, was kept")
				}
				if string(files["abc/layer.tar"]) != "the layer" {
					t.Errorf("layer = %q, want it as it was", files["abc/layer.tar"])
				}
			},
		},
		{
			name: "OCI layout (Docker 25 and later)",
			in: tartest.Of(t,
				tartest.File{Name: "blobs/sha256/aa", Data: []byte("{}")},
				tartest.File{Name: "index.json", Data: ociIndex("docker.io/flynn/controller:latest")},
				tartest.File{Name: "oci-layout", Data: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
			),
			check: func(t *testing.T, files map[string][]byte) {
				var idx struct {
					Manifests []struct {
						Annotations map[string]string `json:"annotations"`
					} `json:"manifests"`
				}
				if err := json.Unmarshal(files["index.json"], &idx); err != nil {
					t.Fatal(err)
				}
				want := map[string]string{annotationImageName: "docker.io/" + ref, annotationRefName: "latest", "other": "kept"}
				if got := idx.Manifests[0].Annotations; fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("annotations = %v, want %v", got, want)
				}
			},
		},
		{
			name: "OCI index of two images names neither",
			in:   tartest.Of(t, tartest.File{Name: "index.json", Data: ociIndex("a:1", "b:1")}),
			check: func(t *testing.T, files map[string][]byte) {
				if bytes.Contains(files["index.json"], []byte(annotationImageName)) {
					t.Errorf("index.json = %s, want no names", files["index.json"])
				}
			},
		},
		{name: "two images", in: tartest.Of(t, tartest.File{Name: "manifest.json", Data: []byte(`[{"Config":"a.json"},{"Config":"b.json"}]`)}), wantErr: "holds 2 images"},
		{name: "null image", in: tartest.Of(t, tartest.File{Name: "manifest.json", Data: []byte(`[null]`)}), wantErr: "holds 1 images"},
		{name: "bad manifest", in: tartest.Of(t, tartest.File{Name: "manifest.json", Data: []byte(`{`)}), wantErr: "not a docker save manifest"},
		{name: "no manifest", in: tartest.Of(t, tartest.File{Name: "a", Data: []byte("x")}), wantErr: "neither manifest.json nor index.json"},
		{name: "not a tar", in: bytes.Repeat([]byte("not a tar archive "), 100), wantErr: "not an image archive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := rewriteArchive(&out, bytes.NewReader(tt.in), ref)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, errNotArchive) {
					t.Fatalf("rewrite = %v, want an errNotArchive with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, readTar(t, out.Bytes()))
		})
	}
}

// loadingBackend is the fake backend with images: it loads an archive's
// image under the names its manifest gives, once gate (when set) is
// closed, and counts the loads.
type loadingBackend struct {
	*fakeBackend
	gate  chan struct{}
	fail  error
	mu    sync.Mutex
	imgs  map[string]ImageInfo
	loads int
}

var _ ImageLoader = (*loadingBackend)(nil)

func (b *loadingBackend) InspectImage(_ context.Context, ref string) (ImageInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	info, ok := b.imgs[ref]
	if !ok {
		return ImageInfo{}, fmt.Errorf("%w: %s", ErrImageNotFound, ref)
	}
	return info, nil
}

func (b *loadingBackend) LoadImage(ctx context.Context, archive io.Reader) error {
	if b.gate != nil {
		select {
		case <-b.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	data, err := io.ReadAll(archive)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.loads++
	if b.fail != nil {
		return b.fail
	}
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		files[hdr.Name], _ = io.ReadAll(tr)
	}
	var m []struct {
		Config   string
		RepoTags []string
	}
	if err := json.Unmarshal(files["manifest.json"], &m); err != nil {
		return fmt.Errorf("invalid archive: %v", err)
	}
	var cfg struct{ Config struct{ User string } }
	_ = json.Unmarshal(files[m[0].Config], &cfg)
	for _, tag := range m[0].RepoTags {
		b.imgs[tag] = ImageInfo{ID: "sha256:" + strings.TrimSuffix(m[0].Config, ".json"), User: cfg.Config.User}
	}
	return nil
}

func (b *loadingBackend) loadCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.loads
}

// archiveServer serves archive at /apps/x/images/y.tar and counts the
// requests; any other path is 404.
type archiveServer struct {
	*httptest.Server
	gets atomic.Int32
}

func newArchiveServer(t *testing.T, archive []byte) *archiveServer {
	s := &archiveServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.gets.Add(1)
		switch r.URL.Path {
		case "/apps/x/images/y.tar":
			_, _ = w.Write(archive)
		case "/broken":
			http.Error(w, "busy", http.StatusInternalServerError)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// signed is the archive's URL with a signature-like query.
func (s *archiveServer) signed(path string) string {
	return s.URL + path + "?expires=99&nonce=n&sig=SECRETSIG"
}

func newLoadingDaemon(t *testing.T, b *loadingBackend, tune func(*Config)) *Daemon {
	t.Helper()
	cfg := Config{HostID: "h1", StateDir: t.TempDir(), PortMin: 40100, PortMax: 40109, CheckInterval: 5 * time.Millisecond,
		IPTables: fakeIPTables{trail: &trail{}}, PortHeld: func(int) bool { return false }, ArchiveClient: &http.Client{}}
	if tune != nil {
		tune(&cfg)
	}
	d, err := New(cfg, b, nil, discard())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// TestArchiveLoadedOnceForTwoJobs: two jobs of one archive started at
// once wait for one fetch and load; the image's non-root user is theirs;
// a later job, and a URL signed again, find the image without a fetch.
func TestArchiveLoadedOnceForTwoJobs(t *testing.T) {
	srv := newArchiveServer(t, savedImage(t, "1001", "evil:latest"))
	b := &loadingBackend{fakeBackend: newFakeBackend(&trail{}), gate: make(chan struct{}), imgs: map[string]ImageInfo{}}
	d := newLoadingDaemon(t, b, nil)
	ctx := context.Background()

	errs := make(chan error, 2)
	for i := range 2 {
		j := testJob(fmt.Sprintf("h1-a%d", i), "sleep")
		j.Artifact = srv.signed("/apps/x/images/y.tar")
		go func() {
			_, err := d.AddJob(ctx, j)
			errs <- err
		}()
	}
	poll.UntilNil(t, 10*time.Second, "both jobs pending while the archive loads", func() error {
		if n := len(d.Jobs()); n != 2 {
			return fmt.Errorf("%d jobs", n)
		}
		for _, a := range d.Jobs() {
			if a.State != host.StatePending {
				return fmt.Errorf("job %s %s", a.Job.ID, a.State)
			}
		}
		return nil
	})
	close(b.gate)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("AddJob: %v", err)
		}
	}
	if got := srv.gets.Load(); got != 1 {
		t.Errorf("archive fetched %d times, want once", got)
	}
	if got := b.loadCount(); got != 1 {
		t.Errorf("archive loaded %d times, want once", got)
	}
	u, _ := url.Parse(srv.URL + "/apps/x/images/y.tar")
	ref := archiveRef(u)
	spec := b.spec("flynn-h1-a0")
	if spec.Image != ref || spec.User != "1001" {
		t.Errorf("container image %q user %q, want %q and the image's user 1001", spec.Image, spec.User, ref)
	}
	if _, err := b.InspectImage(ctx, "evil:latest"); err == nil {
		t.Error("the archive's own name reached the node")
	}

	// Signed again (a new query): the same image, no fetch.
	j := testJob("h1-a2", "sleep")
	j.Artifact = srv.URL + "/apps/x/images/y.tar?sig=other"
	j.Config.User = "1002"
	if _, err := d.AddJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	if got := srv.gets.Load(); got != 1 {
		t.Errorf("archive fetched %d times after a third job, want once", got)
	}
	if spec := b.spec("flynn-h1-a2"); spec.Image != ref || spec.User != "1002" {
		t.Errorf("third job: image %q user %q, want %q and its own user", spec.Image, spec.User, ref)
	}
}

// TestArchiveLoadOutlivesItsRequest: a job whose request gives up while
// its archive loads is gone, but the load goes on for the next try.
func TestArchiveLoadOutlivesItsRequest(t *testing.T) {
	srv := newArchiveServer(t, savedImage(t, ""))
	b := &loadingBackend{fakeBackend: newFakeBackend(&trail{}), gate: make(chan struct{}), imgs: map[string]ImageInfo{}}
	d := newLoadingDaemon(t, b, nil)
	ctx, cancel := context.WithCancel(context.Background())
	j := testJob("h1-gone", "sleep")
	j.Artifact = srv.signed("/apps/x/images/y.tar")
	errc := make(chan error, 1)
	go func() {
		_, err := d.AddJob(ctx, j)
		errc <- err
	}()
	poll.UntilNil(t, 10*time.Second, "job pending", func() error {
		_, err := d.Job(j.ID)
		return err
	})
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("AddJob = %v, want its context's end", err)
	}
	if _, err := d.Job(j.ID); !httpjson.IsNotFound(err) {
		t.Fatalf("job after its request ended: %v, want none", err)
	}
	close(b.gate)
	j.ID = "h1-again"
	if _, err := d.AddJob(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	if got := srv.gets.Load(); got != 1 {
		t.Errorf("archive fetched %d times, want once", got)
	}
}

// TestArchiveLoadTakingLong: a job whose archive takes longer than
// ArchiveWait to load is refused, to be tried again, and the load goes on.
func TestArchiveLoadTakingLong(t *testing.T) {
	srv := newArchiveServer(t, savedImage(t, ""))
	b := &loadingBackend{fakeBackend: newFakeBackend(&trail{}), gate: make(chan struct{}), imgs: map[string]ImageInfo{}}
	d := newLoadingDaemon(t, b, func(c *Config) { c.ArchiveWait = 50 * time.Millisecond })
	j := testJob("h1-slow", "sleep")
	j.Artifact = srv.signed("/apps/x/images/y.tar")
	_, err := d.AddJob(context.Background(), j)
	var apiErr *httpjson.Error
	if !errors.As(err, &apiErr) || apiErr.Code != httpjson.CodeServiceUnavailable || !apiErr.Retry || !strings.Contains(apiErr.Message, "still loading") {
		t.Fatalf("AddJob = %#v, want service_unavailable to try again", err)
	}
	if _, err := d.Job(j.ID); !httpjson.IsNotFound(err) {
		t.Fatalf("refused job left behind: %v", err)
	}
	close(b.gate)
	poll.UntilNil(t, 10*time.Second, "the job started once the load is done", func() error {
		_, err := d.AddJob(context.Background(), j)
		return err
	})
	if got := srv.gets.Load(); got != 1 {
		t.Errorf("archive fetched %d times, want once", got)
	}
}

func TestArchiveFailures(t *testing.T) {
	srv := newArchiveServer(t, savedImage(t, ""))
	junk := newArchiveServer(t, bytes.Repeat([]byte("junk "), 1000))
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	tests := []struct {
		name     string
		artifact string
		tune     func(*Config)
		fail     error
		wantCode httpjson.Code
		want     string
	}{
		{name: "not found", artifact: srv.signed("/nope.tar"), wantCode: httpjson.CodeValidation, want: "/nope.tar: fetch: the server answered 404 Not Found: the archive is gone"},
		{name: "server error", artifact: srv.signed("/broken"), wantCode: httpjson.CodeServiceUnavailable, want: "/broken: fetch: the server answered 500"},
		{name: "nothing listens", artifact: closed.URL + "/a.tar?sig=SECRETSIG", wantCode: httpjson.CodeServiceUnavailable, want: "connection refused"},
		{name: "not an archive", artifact: junk.signed("/apps/x/images/y.tar"), wantCode: httpjson.CodeValidation, want: "not an image archive"},
		{name: "too large", artifact: srv.signed("/apps/x/images/y.tar"), tune: func(c *Config) { c.MaxArchiveSize = 100 }, wantCode: httpjson.CodeValidation, want: "limit of 100"},
		{name: "engine refuses", artifact: srv.signed("/apps/x/images/y.tar"), fail: errors.New("no space left on device"), wantCode: httpjson.CodeServiceUnavailable, want: "load: no space left on device"},
		{name: "ftp", artifact: "ftp://example.com/a.tar", wantCode: httpjson.CodeValidation, want: "must be http(s)://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &loadingBackend{fakeBackend: newFakeBackend(&trail{}), imgs: map[string]ImageInfo{}, fail: tt.fail}
			d := newLoadingDaemon(t, b, tt.tune)
			j := testJob("h1-bad", "sleep")
			j.Artifact = tt.artifact
			j.Config.Ports = []host.Port{{}}
			_, err := d.AddJob(context.Background(), j)
			var apiErr *httpjson.Error
			if !errors.As(err, &apiErr) || apiErr.Code != tt.wantCode || !strings.Contains(apiErr.Message, tt.want) {
				t.Fatalf("AddJob = %#v, want %s with %q", err, tt.wantCode, tt.want)
			}
			if strings.Contains(err.Error(), "SECRETSIG") {
				t.Errorf("error %q holds the URL's signature", err)
			}
			if !strings.HasPrefix(tt.artifact, "ftp:") && !strings.Contains(err.Error(), "image archive http://127.0.0.1:") {
				t.Errorf("error %q does not name the archive", err)
			}
			if _, err := d.Job(j.ID); !httpjson.IsNotFound(err) {
				t.Errorf("failed job left behind: %v", err)
			}
			if free := d.Status().PortsFree; free != 10 {
				t.Errorf("%d ports free after the failure, want all 10", free)
			}
		})
	}
}

// TestTargetPort: a port with a target is published from it, $PORT says
// it, the readiness check dials it at the job's own address, and the job
// is registered at the node's address on the published port.
func TestTargetPort(t *testing.T) {
	h := newHarness(t, 40200, 40209, func(h *harness) { h.cfg.ExternalIP = "10.0.0.5" })
	// The fake's jobs are at 127.0.0.1: the test listens in the job's stead.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	target := ln.Addr().(*net.TCPAddr).Port
	j := testJob("h1-target", "sleep")
	j.Config.Ports = []host.Port{{Target: target, Service: "redis-web"}, {}}
	a, err := h.d.AddJob(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	published := a.Job.Config.Ports[0].Port
	if published < 40200 || published > 40209 || a.Job.Config.Ports[0].Target != target {
		t.Fatalf("port %+v, want one from the range with target %d", a.Job.Config.Ports[0], target)
	}
	spec := h.backend.spec("flynn-h1-target")
	wantPub := []PublishedPort{{Port: published, Target: target, Proto: "tcp"}, {Port: a.Job.Config.Ports[1].Port, Proto: "tcp"}}
	if !slices.Equal(spec.Publish, wantPub) {
		t.Errorf("published %+v, want %+v", spec.Publish, wantPub)
	}
	env := strings.Join(spec.Env, " ") + " "
	for _, want := range []string{"PORT=" + strconv.Itoa(target), "PORT_0=" + strconv.Itoa(target), "PORT_1=" + strconv.Itoa(a.Job.Config.Ports[1].Port)} {
		if !strings.Contains(env, want+" ") {
			t.Errorf("env %q lacks %s", env, want)
		}
	}
	h.waitState(j.ID, host.StateUp)
	want := "register redis-web 10.0.0.5:" + strconv.Itoa(published)
	if !slices.Contains(h.trail.list(), want) {
		t.Errorf("trail %q lacks %q", h.trail.list(), want)
	}
}

func TestTargetPortValidation(t *testing.T) {
	tests := []struct {
		name  string
		ports []host.Port
		hostN bool
		want  string
	}{
		{name: "out of range", ports: []host.Port{{Target: 70000}}, want: "config.ports[0].target"},
		{name: "twice", ports: []host.Port{{Target: 7000}, {Target: 7000}}, want: "target 7000 given twice"},
		{name: "host network", ports: []host.Port{{Target: 7000}}, hostN: true, want: "host's network"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := testJob("h1-x", "sleep")
			j.Config.Ports, j.Config.HostNetwork = tt.ports, tt.hostN
			if err := j.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}
