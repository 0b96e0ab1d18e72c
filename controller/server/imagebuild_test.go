package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/tartest"
)

// fakeBuilder is an ImageBuilder that reads the context, sends lines
// and answers archive or err. With waitFirst, it sends the rest of the
// lines only once firstSeen is closed (by the client's seeing the first).
type fakeBuilder struct {
	lines     []string
	archive   []byte
	err       error
	waitFirst bool
	firstSeen chan struct{}

	mu      sync.Mutex
	app     string
	context []byte
}

var _ ImageBuilder = (*fakeBuilder)(nil)

func (f *fakeBuilder) BuildImage(ctx context.Context, appID string, buildContext io.Reader, line func(string)) (io.ReadCloser, error) {
	b, err := io.ReadAll(buildContext)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.app, f.context = appID, b
	f.mu.Unlock()
	for i, l := range f.lines {
		line(l)
		if i == 0 && f.waitFirst {
			select {
			case <-f.firstSeen:
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(30 * time.Second):
				return nil, errors.New("the client never saw the first line")
			}
		}
	}
	if f.err != nil {
		return nil, f.err
	}
	return io.NopCloser(bytes.NewReader(f.archive)), nil
}

func newBuildHarness(t *testing.T, b *fakeBuilder) (*harness, *memImages) {
	t.Helper()
	images := &memImages{blobs: map[string][]byte{}}
	h := newHarnessWith(t, func(o *Options) { o.Images, o.Builder = images, b })
	return h, images
}

// TestImageBuild: the build's lines reach the client as they come, then
// the image is stored as an upload's; failures after the first line end
// the stream with an error event, those before it are API errors, and
// neither leaves a blob.
func TestImageBuild(t *testing.T) {
	buildCtx := tartest.Of(t, tartest.File{Name: "Dockerfile", Data: []byte("FROM x\n")})
	tests := []struct {
		name      string
		builder   *fakeBuilder
		wantLines []string
		wantCode  httpjson.Code // "": the build succeeds
		wantMsg   string
	}{
		{
			name:      "built",
			builder:   &fakeBuilder{lines: []string{"Step 1/1 : FROM x", "Successfully built"}, archive: legacyArchive(t), waitFirst: true},
			wantLines: []string{"Step 1/1 : FROM x", "Successfully built"},
		},
		{
			name:      "build failed",
			builder:   &fakeBuilder{lines: []string{"Step 1/2 : FROM x", "Step 2/2 : RUN false"}, err: httpjson.ValidationError("", "The command '/bin/sh -c false' returned a non-zero code: 1")},
			wantLines: []string{"Step 1/2 : FROM x", "Step 2/2 : RUN false"},
			wantCode:  httpjson.CodeValidation, wantMsg: "returned a non-zero code: 1",
		},
		{
			name:      "archive not an image",
			builder:   &fakeBuilder{lines: []string{"Successfully built"}, archive: tartest.Of(t, tartest.File{Name: "hello", Data: []byte("hi")})},
			wantLines: []string{"Successfully built"},
			wantCode:  httpjson.CodeValidation, wantMsg: "not a docker save archive",
		},
		{
			name:     "hosts busy",
			builder:  &fakeBuilder{err: &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Message: "this host runs 2 builds already", Retry: true}},
			wantCode: httpjson.CodeServiceUnavailable, wantMsg: "2 builds already",
		},
		{
			name:      "internal failure",
			builder:   &fakeBuilder{lines: []string{"Step 1/1 : FROM x"}, err: errors.New("host h1: connection reset")},
			wantLines: []string{"Step 1/1 : FROM x"},
			wantCode:  httpjson.CodeUnknown, wantMsg: "internal error",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.builder.firstSeen = make(chan struct{})
			h, images := newBuildHarness(t, tt.builder)
			app := h.app(t, "web")
			var lines []string
			art, err := h.client.BuildImage(t.Context(), app.Name, bytes.NewReader(buildCtx), func(l string) {
				if len(lines) == 0 {
					close(tt.builder.firstSeen)
				}
				lines = append(lines, l)
			})
			if !slices.Equal(lines, tt.wantLines) {
				t.Errorf("lines %q, want %q", lines, tt.wantLines)
			}
			tt.builder.mu.Lock()
			gotApp, gotCtx := tt.builder.app, tt.builder.context
			tt.builder.mu.Unlock()
			if gotApp != app.ID || !bytes.Equal(gotCtx, buildCtx) {
				t.Errorf("builder got app %q and %d bytes, want %q and the %d sent", gotApp, len(gotCtx), app.ID, len(buildCtx))
			}
			if tt.wantCode == "" {
				if err != nil {
					t.Fatal(err)
				}
				checkImageArtifact(t, h, images, app, art, tt.builder.archive)
				return
			}
			var apiErr *httpjson.Error
			if !errors.As(err, &apiErr) || apiErr.Code != tt.wantCode || !bytes.Contains([]byte(apiErr.Message), []byte(tt.wantMsg)) {
				t.Fatalf("err %v, want %s with %q", err, tt.wantCode, tt.wantMsg)
			}
			if p := images.paths(); len(p) != 0 {
				t.Errorf("blobs left behind: %v", p)
			}
		})
	}
}

// TestImageBuildGuards: a person may not build for a system app, and a
// controller without a builder or a blobstore says so at once.
func TestImageBuildGuards(t *testing.T) {
	buildCtx := tartest.Of(t, tartest.File{Name: "Dockerfile", Data: []byte("FROM x\n")})
	b := &fakeBuilder{archive: legacyArchive(t)}
	h, _ := newBuildHarness(t, b)
	person, _ := h.person(t, "alice")
	h.systemApp(t, "router")
	if _, err := person.BuildImage(t.Context(), "router", bytes.NewReader(buildCtx), nil); !httpjson.IsCode(err, httpjson.CodeForbidden) {
		t.Fatalf("person's build for a system app = %v, want forbidden", err)
	}
	h.app(t, "mine")
	if _, err := person.BuildImage(t.Context(), "mine", bytes.NewReader(buildCtx), nil); err != nil {
		t.Fatalf("person's build for an app: %v", err)
	}

	for name, mod := range map[string]func(*Options){
		"no builder":   func(o *Options) { o.Images = &memImages{blobs: map[string][]byte{}} },
		"no blobstore": func(o *Options) { o.Builder = b },
	} {
		t.Run(name, func(t *testing.T) {
			bare := newHarnessWith(t, mod)
			bare.app(t, "echo")
			if _, err := bare.client.BuildImage(t.Context(), "echo", bytes.NewReader(buildCtx), nil); !httpjson.IsCode(err, httpjson.CodeServiceUnavailable) {
				t.Fatalf("build = %v, want service_unavailable", err)
			}
		})
	}
}
