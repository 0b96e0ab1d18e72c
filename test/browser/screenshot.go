package browser

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// ArtifactsEnv names the directory where tests leave files for a person to
// look at after the run, such as screenshots; CI can collect it.
const ArtifactsEnv = "FLYNN_TEST_ARTIFACTS"

// ArtifactDir returns the directory named by $FLYNN_TEST_ARTIFACTS, by
// default <os.TempDir()>/flynn-test-artifacts, creating it if needed. Unlike
// t.TempDir it outlives the test.
func ArtifactDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(ArtifactsEnv)
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "flynn-test-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("browser: creating the artifact directory: %v", err)
	}
	return dir
}

// Screenshot saves a PNG of the whole page of ctx's tab, not only the part
// in the window, as <ArtifactDir>/<name>.png, logs where, and returns the
// path. A later screenshot of the same name replaces it, so a name should
// say which test took it (t.Name() is a good prefix; slashes become
// underscores). It fails the test if
// it cannot take or write the image.
func Screenshot(t testing.TB, ctx context.Context, name string) string {
	t.Helper()
	png, err := chromedp.Run(ctx, fullPagePNG())
	if err != nil {
		t.Fatalf("browser: screenshot %q: %v", name, err)
	}
	// A subtest's name has slashes; the file stays in the directory.
	file := strings.NewReplacer("/", "_", string(filepath.Separator), "_").Replace(name) + ".png"
	path := filepath.Join(ArtifactDir(t), file)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("browser: screenshot %q: %v", name, err)
	}
	t.Logf("browser: screenshot %s", path)
	return path
}

// fullPagePNG captures the page's whole scrollable area: a capture without a
// clip covers only the viewport, even with CaptureBeyondViewport.
func fullPagePNG() chromedp.Action[[]byte] {
	return func(ctx context.Context, tg *chromedp.Target) ([]byte, error) {
		m, err := cdp.Call(ctx, tg, page.GetLayoutMetrics, cdp.Empty{})
		if err != nil {
			return nil, fmt.Errorf("reading the page size: %w", err)
		}
		params := page.CaptureScreenshotParams{
			Format:                page.CaptureScreenshotFormatPng,
			CaptureBeyondViewport: new(true),
		}
		if s := m.CSSContentSize; s != nil && s.Width > 0 && s.Height > 0 {
			params.Clip = &page.Viewport{
				Width:  math.Ceil(s.Width),
				Height: math.Ceil(s.Height),
				Scale:  1,
			}
		}
		r, err := cdp.Call(ctx, tg, page.CaptureScreenshot, params)
		if err != nil {
			return nil, fmt.Errorf("capturing the page: %w", err)
		}
		return r.Data, nil
	}
}
