package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// BuildImage streams buildContext, a tar with a Dockerfile at its root,
// to app (id or name) to be built on one of the cluster's hosts, calling
// lines with each line of the build's output as it arrives (lines may be
// nil), and returns the docker-archive artifact of the image, stored as
// UploadImage's is. A refusal, and a build that failed, are an
// *httpjson.Error whose Message says why (a failed build's is a
// validation_error).
func (c *Client) BuildImage(ctx context.Context, app string, buildContext io.Reader, lines func(string)) (*controller.Artifact, error) {
	p := path("apps", app, "images", "build")
	resp, err := c.postTar(ctx, p, buildContext, -1)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var ev controller.ImageBuildEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, fmt.Errorf("controller client: decode %s %s: %w", http.MethodPost, p, err)
		}
		switch {
		case ev.Artifact != nil:
			return ev.Artifact, nil
		case ev.Error != nil:
			return nil, &httpjson.Error{Code: httpjson.Code(ev.Error.Code), Message: ev.Error.Message}
		case lines != nil:
			lines(ev.Line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("controller client: read %s %s: %w", http.MethodPost, p, err)
	}
	return nil, errors.New("controller client: the build's answer ended before the build did")
}
