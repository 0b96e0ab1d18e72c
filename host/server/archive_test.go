package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	dockerclient "github.com/docker/docker/client"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/host/hosttest"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// userImage commits the test image with USER user as a new image, which
// the test removes when it ends (with every name it got meanwhile).
func userImage(t *testing.T, dc *dockerclient.Client, base, user string) string {
	t.Helper()
	ctx := context.Background()
	c, err := dc.ContainerCreate(ctx, &container.Config{Image: base, Labels: map[string]string{hosttest.Label: "true"}}, nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer dc.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
	resp, err := dc.ContainerCommit(ctx, c.ID, container.CommitOptions{Changes: []string{"USER " + user}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = dc.ImageRemove(context.Background(), resp.ID, image.RemoveOptions{Force: true, PruneChildren: true})
	})
	return resp.ID
}

// TestArchiveJob: two jobs of an image archive (what `docker save`
// writes) served over HTTP load it once and run it as the image's user;
// an archive the server does not have fails the job with a message that
// names it without its signature.
func TestArchiveJob(t *testing.T) {
	dc := hosttest.Docker(t)
	img := userImage(t, dc, hosttest.Build(t, dc), "1001:1002")
	rc, err := dc.ImageSave(context.Background(), []string{img})
	if err != nil {
		t.Fatal(err)
	}
	archive, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	var gets atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		if r.URL.Path != "/apps/x/images/y.tar" {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, "y.tar", time.Time{}, bytes.NewReader(archive))
	}))
	defer srv.Close()

	h := newTestHost(t, nil)
	errs := make(chan error, 2)
	var ids []string
	for range 2 {
		j := h.job("whoami")
		j.Artifact = srv.URL + "/apps/x/images/y.tar?expires=1&sig=SECRETSIG"
		ids = append(ids, j.ID)
		go func() {
			_, err := h.c.AddJob(ctxT(t), j)
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("AddJob: %v", err)
		}
	}
	for _, id := range ids {
		h.waitState(id, host.StateDown)
		if got := h.logText(id, host.StreamStdout); got != "uid=1001 gid=1002\n" {
			t.Errorf("job %s: %q, want the image's user uid=1001 gid=1002", id, got)
		}
	}
	if n := gets.Load(); n != 1 {
		t.Errorf("archive fetched %d times for two jobs, want once", n)
	}

	bad := h.job("whoami")
	bad.Artifact = srv.URL + "/apps/x/images/gone.tar?expires=1&sig=SECRETSIG"
	_, err = h.c.AddJob(ctxT(t), bad)
	var apiErr *httpjson.Error
	if !errors.As(err, &apiErr) || apiErr.Code != httpjson.CodeValidation || apiErr.Field != "artifact" ||
		!strings.Contains(apiErr.Message, "image archive "+srv.URL+"/apps/x/images/gone.tar: fetch: the server answered 404") {
		t.Fatalf("AddJob of a missing archive = %v, want a validation error on artifact naming it", err)
	}
	if strings.Contains(err.Error(), "SECRETSIG") {
		t.Errorf("error %q holds the URL's signature", err)
	}
}

// TestTargetPortPublished: a process listening on a port of its choice
// (the target) is reached at the node's address on the allocated port,
// and registered there.
func TestTargetPortPublished(t *testing.T) {
	h := newTestHost(t, nil)
	j := h.job("serve")
	j.Config.Ports = []host.Port{{Target: 7000, Proto: "http", Service: "target-web"}}
	a := h.add(j)
	port := a.Job.Config.Ports[0].Port
	if port < h.cfg.PortMin || port > h.cfg.PortMax {
		t.Fatalf("published port %d, want one of %d-%d", port, h.cfg.PortMin, h.cfg.PortMax)
	}
	h.waitState(j.ID, host.StateUp)
	addr := net.JoinHostPort(h.cfg.ExternalIP, strconv.Itoa(port))
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("job up but not reachable at %s: %v", addr, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("port=%d\n", 7000); string(body) != want {
		t.Fatalf("job answered %q, want %q ($PORT is the target)", body, want)
	}
	if !h.reg.isLive("target-web", addr) {
		t.Fatalf("job not registered at the published address %s: %v", addr, h.reg.events)
	}
}
