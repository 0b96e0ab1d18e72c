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
	req, err := c.newRequest(ctx, http.MethodPost, p, nil)
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(archive)
	req.ContentLength = size
	if size < 0 {
		req.ContentLength = -1
	}
	req.Header.Set("Content-Type", ImageContentType)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("controller client: %s %s: %w", http.MethodPost, p, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, httpjson.ReadError(resp)
	}
	var art controller.Artifact
	if err := json.NewDecoder(resp.Body).Decode(&art); err != nil {
		return nil, fmt.Errorf("controller client: decode %s %s: %w", http.MethodPost, p, err)
	}
	return &art, nil
}
