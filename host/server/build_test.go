package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/image"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/host/client"
	"github.com/openflynn/flynn/host/daemon"
	"github.com/openflynn/flynn/host/hosttest"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/tartest"
	"github.com/openflynn/flynn/pkg/testdeps"
)

// buildContext is a context tar holding dockerfile.
// build builds dockerfile on h, returning the image id, the lines and the error.
func build(t *testing.T, h *testHost, dockerfile string) (string, []string, error) {
	t.Helper()
	var lines []string
	id, err := h.c.BuildImage(ctxT(t), client.BuildOptions{App: "app-" + h.cfg.HostID}, bytes.NewReader(tartest.Of(t, tartest.File{Name: "Dockerfile", Data: []byte(dockerfile)})), func(l string) { lines = append(lines, l) })
	if id != "" {
		t.Cleanup(func() {
			_, _ = h.docker.ImageRemove(context.Background(), id, image.RemoveOptions{Force: true, PruneChildren: true})
		})
	}
	return id, lines, err
}

// TestBuildImage: a Dockerfile is built with its output streamed, the image
// is labelled with the app, its archive is served once (and loads), and
// images the host did not build are not served.
func TestBuildImage(t *testing.T) {
	h := newTestHost(t, nil)
	id, lines, err := build(t, h, "FROM "+h.image+"\nRUN [\"/testjob\", \"echo\", \"hello-from-run\"]\nEXPOSE 8080\n")
	if err != nil {
		t.Fatalf("build: %v (lines %q)", err, lines)
	}
	if out := strings.Join(lines, "\n"); !strings.Contains(out, "hello-from-run") || !strings.Contains(out, "Step 2/") {
		t.Fatalf("build output lacks the RUN step's line:\n%s", out)
	}
	info, err := h.docker.ImageInspect(ctxT(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := info.Config.Labels[host.BuildLabelApp], "app-"+h.cfg.HostID; got != want {
		t.Fatalf("label %s = %q, want %q", host.BuildLabelApp, got, want)
	}
	if _, ok := info.Config.ExposedPorts["8080/tcp"]; !ok {
		t.Fatalf("exposed ports %v lack 8080/tcp", info.Config.ExposedPorts)
	}

	rc, err := h.c.ImageArchive(ctxT(t), id)
	if err != nil {
		t.Fatal(err)
	}
	archive, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.docker.ImageLoad(ctxT(t), bytes.NewReader(archive))
	if err != nil {
		t.Fatalf("load the archive: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if bytes.Contains(body, []byte(`"error"`)) {
		t.Fatalf("load the archive: %s", body)
	}

	tests := []struct {
		name string
		id   string
	}{
		{name: "served once", id: id},
		{name: "not built here", id: h.image},
		{name: "no such image", id: "sha256:" + strings.Repeat("0", 64)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := tt.id
			if !strings.HasPrefix(ref, "sha256:") {
				i, err := h.docker.ImageInspect(ctxT(t), ref)
				if err != nil {
					t.Fatal(err)
				}
				ref = i.ID
			}
			rc, err := h.c.ImageArchive(ctxT(t), ref)
			if err == nil {
				rc.Close()
			}
			if !httpjson.IsNotFound(err) {
				t.Fatalf("archive of %s: %v, want not_found", ref, err)
			}
		})
	}
}

// TestBuildImageFails: a build Docker refuses ends with its message; a
// Dockerfile naming an image the host lacks is refused before it builds.
func TestBuildImageFails(t *testing.T) {
	h := newTestHost(t, nil)
	tests := []struct {
		name       string
		dockerfile string
		wantCode   httpjson.Code // an API error before the build, else a failed build
		want       string
	}{
		{name: "unknown instruction", dockerfile: "FROM " + h.image + "\nBOGUS x\n", want: "BOGUS"},
		{name: "failing RUN", dockerfile: "FROM " + h.image + "\nRUN [\"/testjob\", \"exit\", \"3\"]\n", want: "non-zero code: 3"},
		{name: "missing base image", dockerfile: "FROM flynn-test-none/nothing:latest\n", wantCode: httpjson.CodeValidation, want: "builds pull no image"},
		{name: "base image from an argument", dockerfile: "ARG BASE\nFROM $BASE\n", wantCode: httpjson.CodeValidation, want: "name the image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, lines, err := build(t, h, tt.dockerfile)
			var apiErr *httpjson.Error
			switch {
			case err == nil:
				t.Fatalf("build succeeded; lines %q", lines)
			case tt.wantCode != "":
				if !errors.As(err, &apiErr) || apiErr.Code != tt.wantCode || !strings.Contains(apiErr.Message, tt.want) {
					t.Fatalf("err %v, want %s with %q", err, tt.wantCode, tt.want)
				}
			default:
				if !errors.Is(err, client.ErrBuildFailed) || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err %v, want a failed build with %q", err, tt.want)
				}
			}
		})
	}
}

// TestBuildImageOnAppNetwork: a RUN step is behind the app network's
// firewall: it reaches the node on a router port, not on another (where
// the host API would be).
func TestBuildImageOnAppNetwork(t *testing.T) {
	if !hosttest.Firewall() {
		testdeps.Missing(t, "iptables as root", errors.New("cannot install firewall rules here"))
	}
	listen := func() int {
		ln, err := net.Listen("tcp", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		return ln.Addr().(*net.TCPAddr).Port
	}
	allowed, blocked := listen(), listen()
	h := newTestHost(t, func(c *daemon.Config) { c.RouterPorts = "80,443," + strconv.Itoa(allowed) })
	dial := func(port int) string {
		return "FROM " + h.image + "\nRUN [\"/testjob\", \"dial-gateway\", \"" + strconv.Itoa(port) + "\"]\n"
	}
	if _, lines, err := build(t, h, dial(allowed)); err != nil || !strings.Contains(strings.Join(lines, "\n"), "connected to") {
		t.Fatalf("router port: %v; lines %q", err, lines)
	}
	_, lines, err := build(t, h, dial(blocked))
	if err == nil || !strings.Contains(strings.Join(lines, "\n"), "connection refused") {
		t.Fatalf("other port: %v, want a failed build; lines %q", err, lines)
	}
}
