package hostrunner

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/server"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/authkey"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// RunAttached creates the job on the least-loaded host through POST
// /host/attach, so that it starts only once attached, and returns the raw
// attach stream (host.Frame framing) for the controller to pass through.
// The job's stdin is open: the caller sends FrameStdin and FrameStdinEOF.
// The stream is closed when ctx ends; the host stops a job whose attach
// client went away.
func (r *Runner) RunAttached(ctx context.Context, spec *server.JobSpec) (*controller.Job, io.ReadWriteCloser, error) {
	h, err := r.pickHost(ctx)
	if err != nil {
		return nil, nil, err
	}
	job := spec.HostJob(h.id)
	job.Config.Stdin = true
	stream, err := attachRaw(ctx, h.client.URL(), r.key, &host.AttachRequest{Job: job, Stdin: true})
	if err != nil {
		return nil, nil, fmt.Errorf("host %s: attach: %w", h.id, err)
	}
	r.log.Info("one-off job placed attached", "job.id", job.ID, "host.id", h.id, "app.id", spec.Job.AppID)
	return &controller.Job{ID: job.ID, HostID: h.id, State: controller.JobStateStarting, Args: job.Config.Args}, stream, nil
}

// attachRaw performs the attach handshake and returns the connection,
// reading first whatever the handshake's reader buffered past the headers.
// host/client's Attach decodes frames itself; the controller needs them
// untouched.
func attachRaw(ctx context.Context, baseURL, key string, req *host.AttachRequest) (*attachStream, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("host url: %w", err)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &attachStream{conn: conn}
	s.stop = context.AfterFunc(ctx, func() { conn.Close() })
	fail := func(err error) (*attachStream, error) {
		s.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return fail(err)
	}
	hreq, err := http.NewRequest(http.MethodPost, baseURL+"/host/attach", bytes.NewReader(body))
	if err != nil {
		return fail(err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Connection", "Upgrade")
	hreq.Header.Set("Upgrade", host.AttachUpgrade)
	authkey.Set(hreq, key)
	if err := hreq.Write(conn); err != nil {
		return fail(fmt.Errorf("send request: %w", err))
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, hreq)
	if err != nil {
		return fail(fmt.Errorf("read response: %w", err))
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		err := httpjson.ReadError(resp)
		resp.Body.Close()
		return fail(err)
	}
	s.r = br
	return s, nil
}

// attachStream is an attach connection after the handshake.
type attachStream struct {
	conn      net.Conn
	r         io.Reader
	stop      func() bool
	closeOnce sync.Once
}

func (s *attachStream) Read(p []byte) (int, error)  { return s.r.Read(p) }
func (s *attachStream) Write(p []byte) (int, error) { return s.conn.Write(p) }

// Close detaches.
func (s *attachStream) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.stop()
		err = s.conn.Close()
	})
	return err
}
