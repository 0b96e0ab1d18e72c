package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/openflynn/flynn/cli/config"
	"github.com/openflynn/flynn/pkg/tlspin"
)

// httpClient returns the HTTP client that reaches cl's controller: TLS
// checked against the cluster's pin on every connection (https URLs), and
// dialling ControllerAddr when set, while SNI and Host stay the URL's host.
func httpClient(cl *config.Cluster) (*http.Client, error) {
	u, err := url.Parse(cl.ControllerURL)
	if err != nil {
		return nil, fmt.Errorf("controller URL: %w", err)
	}
	tr := &http.Transport{
		// HTTP/1.1 only: `flynn run` attaches by upgrading its connection
		// (Upgrade: flynn-attach/0), which HTTP/2 cannot carry.
		ForceAttemptHTTP2:   false,
		MaxIdleConns:        10,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	switch u.Scheme {
	case "https":
		if cl.TLSPin == "" {
			return nil, errors.New("an https controller needs a TLS pin (-p)")
		}
		tr.TLSClientConfig = tlspin.Config(cl.TLSPin, u.Hostname())
	case "http":
		// Only for development and tests: nothing to pin.
	default:
		return nil, fmt.Errorf("controller URL %q: want http or https", cl.ControllerURL)
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	tr.DialContext = dialer.DialContext
	if addr := cl.ControllerAddr; addr != "" {
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		}
	}
	return &http.Client{Transport: tr}, nil
}
