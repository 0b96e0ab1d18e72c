package hostrunner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/openflynn/flynn/controller/server"
	hostclient "github.com/openflynn/flynn/host/client"
	"github.com/openflynn/flynn/pkg/httpjson"
)

var _ server.ImageBuilder = (*Runner)(nil)

// BuildImage builds buildContext's Dockerfile on the least-loaded host
// (chosen as a one-off job's), streaming its output lines to line, then
// fetches the image's archive from that host. A build that failed is a
// validation_error whose message is the host's; a host's refusal (it
// runs its most builds at once: service_unavailable, retry) is passed
// on as it is.
func (r *Runner) BuildImage(ctx context.Context, appID string, buildContext io.Reader, line func(string)) (io.ReadCloser, error) {
	h, err := r.pickHost(ctx)
	if err != nil {
		return nil, err
	}
	r.log.Info("image build placed", "host.id", h.id, "app.id", appID)
	id, err := h.client.BuildImage(ctx, hostclient.BuildOptions{App: appID}, buildContext, line)
	if errors.Is(err, hostclient.ErrBuildFailed) {
		return nil, httpjson.ValidationError("", "%s", strings.TrimPrefix(err.Error(), hostclient.ErrBuildFailed.Error()+": "))
	}
	var apiErr *httpjson.Error
	if errors.As(err, &apiErr) {
		return nil, apiErr
	}
	if err != nil {
		return nil, fmt.Errorf("host %s: build: %w", h.id, err)
	}
	archive, err := h.client.ImageArchive(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("host %s: archive of built image %s: %w", h.id, id, err)
	}
	return archive, nil
}
