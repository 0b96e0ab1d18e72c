package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// ImageContentType is the media type of an image archive upload.
const ImageContentType = "application/x-tar"

// UploadImage streams archive, the tar `docker save` writes of one image,
// to app (id or name) and returns the artifact the controller makes of it
// (controller.ArtifactTypeDockerArchive, its meta the image's config: see
// controller.ImageMeta*). size is the archive's length, or -1 when it is
// not known (a `docker save` stream), which sends it chunked. The archive
// is read once: a failed upload is not sent again.
func (c *Client) UploadImage(ctx context.Context, app string, archive io.Reader, size int64) (*controller.Artifact, error) {
	p := path("apps", app, "images")
	resp, err := c.postTar(ctx, p, archive, size)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var art controller.Artifact
	if err := json.NewDecoder(resp.Body).Decode(&art); err != nil {
		return nil, fmt.Errorf("controller client: decode %s %s: %w", http.MethodPost, p, err)
	}
	return &art, nil
}

// postTar POSTs a tar stream of size bytes (-1: unknown, sent chunked) to
// p and returns the response of a request that succeeded; the caller
// closes its body.
func (c *Client) postTar(ctx context.Context, p string, body io.Reader, size int64) (*http.Response, error) {
	req, err := c.newRequest(ctx, http.MethodPost, p, nil)
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(body)
	req.ContentLength = max(size, -1)
	req.Header.Set("Content-Type", ImageContentType)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("controller client: %s %s: %w", http.MethodPost, p, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, httpjson.ReadError(resp)
	}
	return resp, nil
}
