package slugbuilder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	"github.com/openflynn/flynn/pkg/httpretry"
)

// restoreCache unpacks the gzipped tar at cacheURL into dir; found is false when
// there is none yet (404, the app's first build). The cache is what the
// app's last build left, so no bound applies but the build job's disk
// limit: a cache may rightly hold more than the source.
func restoreCache(ctx context.Context, client *http.Client, cacheURL, dir string) (found bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cacheURL, nil)
	if err != nil {
		return false, fmt.Errorf("cache URL: %w", err)
	}
	resp, err := httpretry.Do(ctx, client, httpretry.DefaultWithin, func() (*http.Request, error) { return req.Clone(ctx), nil })
	if err != nil {
		return false, fmt.Errorf("restore the build cache: %w", hideQuery(err))
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return false, nil
	default:
		return false, fmt.Errorf("restore the build cache: GET %s: %s", logURL(req.URL), resp.Status)
	}
	if err := ExtractTarGz(resp.Body, dir, Limits{}); err != nil {
		return false, fmt.Errorf("restore the build cache: %w", err)
	}
	return true, nil
}

// putTarGz archives dir to a temporary file (so the upload has a length and
// can be retried by the server's client rules) and PUTs it to putURL.
func putTarGz(ctx context.Context, client *http.Client, putURL, dir string, skip func(string, bool) bool) (int64, error) {
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
	// Each attempt reads the file from its start; an attempt is retried
	// only when the blobstore never saw it, so a signed URL is used once.
	var req *http.Request
	resp, err := httpretry.Do(ctx, client, httpretry.DefaultWithin, func() (*http.Request, error) {
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		r, err := http.NewRequestWithContext(ctx, http.MethodPut, putURL, io.NopCloser(tmp))
		if err != nil {
			return nil, err
		}
		r.ContentLength = size
		r.Header.Set("Content-Type", "application/gzip")
		req = r
		return r, nil
	})
	if err != nil {
		return 0, hideQuery(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("PUT %s: %s %s", logURL(req.URL), resp.Status, body)
	}
	return size, nil
}

// logURL is u fit for output: without credentials and without the query,
// which holds a signed URL's signature.
func logURL(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.ForceQuery = nil, "", false
	return c.String()
}

// hideQuery takes the credentials out of the URL in an HTTP client's
// error, which quotes it whole.
func hideQuery(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			ue.URL = logURL(u)
		}
	}
	return err
}
