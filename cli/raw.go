package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/openflynn/flynn/pkg/authkey"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// rawRequest calls a controller endpoint that controller/client has no
// method for yet (job logs, stopping a job) over the same pinned
// connection, and returns the response for the caller to read and close.
func (r *runner) rawRequest(ctx context.Context, method string, segments []string, query url.Values) (*http.Response, error) {
	var p strings.Builder
	for _, s := range segments {
		p.WriteByte('/')
		p.WriteString(url.PathEscape(s))
	}
	u := strings.TrimRight(r.cluster.ControllerURL, "/") + p.String()
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	authkey.Set(req, r.cluster.Key)
	resp, err := r.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, p.String(), err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, httpjson.ReadError(resp)
	}
	return resp, nil
}
