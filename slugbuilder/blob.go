package slugbuilder

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
)

// restoreCache unpacks the gzipped tar at url into dir; found is false when
// there is none yet (404, the app's first build).
func restoreCache(ctx context.Context, client *http.Client, url, dir string) (found bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, fmt.Errorf("cache URL: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, fmt.Errorf("restore the build cache: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return false, nil
	default:
		return false, fmt.Errorf("restore the build cache: GET %s: %s", req.URL.Redacted(), resp.Status)
	}
	if err := ExtractTarGz(resp.Body, dir); err != nil {
		return false, fmt.Errorf("restore the build cache: %w", err)
	}
	return true, nil
}

// putTarGz archives dir to a temporary file (so the upload has a length and
// can be retried by the server's client rules) and PUTs it to url.
func putTarGz(ctx context.Context, client *http.Client, url, dir string, skip func(string, bool) bool) (int64, error) {
	tmp, err := os.CreateTemp("", "slugbuilder-*.tgz")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := WriteTarGz(tmp, dir, skip); err != nil {
		return 0, err
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, io.NopCloser(tmp))
	if err != nil {
		return 0, err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/gzip")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("PUT %s: %s %s", req.URL.Redacted(), resp.Status, body)
	}
	return size, nil
}
