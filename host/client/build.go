package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/authkey"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// BuildOptions are the parameters of a build (see host.BuildEvent).
type BuildOptions struct {
	// App is the app's id (required).
	App string
	// Memory is the build's memory limit; 0: host.DefaultBuildMemory.
	Memory int64
	// Timeout bounds the build; 0: host.DefaultBuildTimeout.
	Timeout time.Duration
}

// ErrBuildFailed is wrapped by the error of a build the host ran and that
// failed: the error's text is the host's message.
var ErrBuildFailed = errors.New("build failed")

// BuildImage builds the Dockerfile of buildContext (a tar) on the host,
// calling line with each line of its output as it comes, and returns
// the built image's id, whose archive ImageArchive then streams. A
// refusal before the build began is an *httpjson.Error (a busy host's is
// service_unavailable with Retry); a build that failed wraps
// ErrBuildFailed. Ending ctx cancels the build.
func (c *Client) BuildImage(ctx context.Context, opts BuildOptions, buildContext io.Reader, line func(string)) (string, error) {
	q := url.Values{"app": {opts.App}}
	if opts.Memory > 0 {
		q.Set("memory", strconv.FormatInt(opts.Memory, 10))
	}
	timeout := host.DefaultBuildTimeout
	if opts.Timeout > 0 {
		timeout = opts.Timeout
		q.Set("timeout", opts.Timeout.String())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/host/images/build?"+q.Encode(), buildContext)
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-tar")
	authkey.Set(req, c.key)
	// The host answers once it has the whole context and the build's
	// first line: the upload and the first step's wait come before it.
	resp, err := c.send(req, timeout+c.cfg.AnswerTimeout)
	if err != nil {
		return "", fmt.Errorf("build image: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return "", httpjson.ReadError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var ev host.BuildEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return "", fmt.Errorf("build image: decode its output: %w", err)
		}
		switch {
		case ev.ImageID != "":
			return ev.ImageID, nil
		case ev.Error != "":
			return "", fmt.Errorf("%w: %s", ErrBuildFailed, ev.Error)
		case line != nil:
			line(ev.Line)
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("build image: read its output: %w", err)
	}
	return "", errors.New("build image: the host's answer ended before the build did")
}

// ImageArchive streams an image the host built as `docker save` writes
// it; the caller closes it. The host drops its build tag once it has sent
// it all, so a second call is not_found. A stream cut short fails its
// Read rather than end early.
func (c *Client) ImageArchive(ctx context.Context, imageID string) (io.ReadCloser, error) {
	resp, err := c.request(ctx, http.MethodGet, "/host/images/"+url.PathEscape(imageID)+"/archive", nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
