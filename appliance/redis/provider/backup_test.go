package provider

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/appliance/redis"
	"github.com/openflynn/flynn/appliance/redis/resp"
	"github.com/openflynn/flynn/controller"
)

// dumpHarness is an API on a fake controller whose Redis servers are
// fakes.
type dumpHarness struct {
	f      *fakeController
	dialer *fakeDialer
	api    string
}

func newDumpHarness(t *testing.T, opts Options) *dumpHarness {
	t.Helper()
	h := &dumpHarness{f: newFakeController(), dialer: &fakeDialer{}}
	opts.Host = testHost
	if opts.Dialer == nil {
		opts.Dialer = h.dialer
	}
	if opts.retryInterval == 0 {
		opts.retryInterval = time.Millisecond
	}
	srv := httptest.NewServer(Handler(New(h.f, opts), testKey, nil))
	t.Cleanup(srv.Close)
	h.api = srv.URL
	return h
}

// server provisions a resource and gives it a fake Redis server.
func (h *dumpHarness) server(t *testing.T) (string, *fakeRedis) {
	t.Helper()
	res := provision(t, h.api)
	r := newFakeRedis(res.Env[redis.EnvPassword])
	h.dialer.add(res.ID, r)
	return res.ID, r
}

// get fetches a backup and returns the status, content type and body, or
// the error reading the body.
func (h *dumpHarness) get(t *testing.T, id string) (int, string, []byte, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, h.api+Path+"/"+id+"/backup", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("", testKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res.StatusCode, res.Header.Get("Content-Type"), body, err
}

// commands encodes commands as a dump stream.
func commands(cmds ...[]string) string {
	var b bytes.Buffer
	w := resp.NewWriter(&b)
	for _, c := range cmds {
		w.WriteCommandString(c...)
	}
	w.Flush()
	return b.String()
}

func TestBackupAndRestore(t *testing.T) {
	h := newDumpHarness(t, Options{})
	srcID, src := h.server(t)
	src.scanPage = 2 // several SCANs per database
	src.set(0, "a", "1", -1)
	src.set(0, "b", "2", 5000)
	src.set(0, "c", "3", -1)
	src.set(3, "a", "db3", -1)
	src.set(15, "bin\x00\r\n", "\xff", -1)

	status, ct, body, err := h.get(t, srcID)
	if err != nil || status != http.StatusOK || ct != "application/octet-stream" {
		t.Fatalf("GET backup = %d %q, %v; want 200 application/octet-stream", status, ct, err)
	}
	want := commands(
		[]string{"SELECT", "0"},
		[]string{"RESTORE", "a", "0", "fake:1", "REPLACE"},
		[]string{"RESTORE", "b", "5000", "fake:2", "REPLACE"},
		[]string{"RESTORE", "c", "0", "fake:3", "REPLACE"},
		[]string{"SELECT", "3"},
		[]string{"RESTORE", "a", "0", "fake:db3", "REPLACE"},
		[]string{"SELECT", "15"},
		[]string{"RESTORE", "bin\x00\r\n", "0", "fake:\xff", "REPLACE"},
	)
	if string(body) != want {
		t.Errorf("dump\n%q\nwant\n%q", body, want)
	}

	dstID, dst := h.server(t)
	dst.set(0, "a", "overwritten", -1)
	status, reply := call(t, http.MethodPost, h.api+Path+"/"+dstID+"/restore", testKey, string(body))
	if status != http.StatusOK || strings.TrimSpace(string(reply)) != `{"keys":5}` {
		t.Fatalf("POST restore = %d %s, want 200 {\"keys\":5}", status, reply)
	}
	if got, want := dst.data(), src.data(); !reflect.DeepEqual(got, want) {
		t.Errorf("restored %v, want %v", got, want)
	}
}

func TestBackupOfEmptyServer(t *testing.T) {
	h := newDumpHarness(t, Options{})
	id, _ := h.server(t)
	status, ct, body, err := h.get(t, id)
	if err != nil || status != http.StatusOK || ct != "application/octet-stream" || len(body) != 0 {
		t.Fatalf("GET backup = %d %q %q, %v; want 200 and an empty dump", status, ct, body, err)
	}
	other, r := h.server(t)
	status, reply := call(t, http.MethodPost, h.api+Path+"/"+other+"/restore", testKey, "")
	if status != http.StatusOK || strings.TrimSpace(string(reply)) != `{"keys":0}` {
		t.Errorf("POST restore of an empty dump = %d %s, want 200 {\"keys\":0}", status, reply)
	}
	if dials, _ := r.stats(); dials == 0 {
		t.Error("an empty restore did not wait for its server")
	}
}

func TestBackupNotFound(t *testing.T) {
	h := newDumpHarness(t, Options{})
	const other = "0123456789abcdef"
	if err := h.f.CreateApp(t.Context(), &controller.App{Name: "redis-" + other}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"fedcba9876543210", other, "controller", "..%2Fcontroller"} {
		if status, _, body, _ := h.get(t, id); status != http.StatusNotFound {
			t.Errorf("GET backup of %s = %d %s, want 404", id, status, body)
		}
		if status, body := call(t, http.MethodPost, h.api+Path+"/"+id+"/restore", testKey, commands([]string{"SELECT", "0"})); status != http.StatusNotFound {
			t.Errorf("POST restore of %s = %d %s, want 404", id, status, body)
		}
	}
}

func TestBackupFails(t *testing.T) {
	t.Run("server down", func(t *testing.T) {
		h := newDumpHarness(t, Options{})
		res := provision(t, h.api) // no server behind it
		if status, _, body, _ := h.get(t, res.ID); status != http.StatusServiceUnavailable {
			t.Errorf("GET backup = %d %s, want 503", status, body)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		h := newDumpHarness(t, Options{})
		res := provision(t, h.api)
		h.dialer.add(res.ID, newFakeRedis("another"))
		if status, _, body, _ := h.get(t, res.ID); status != http.StatusServiceUnavailable || !strings.Contains(string(body), "WRONGPASS") {
			t.Errorf("GET backup = %d %s, want 503 saying WRONGPASS", status, body)
		}
	})
	t.Run("before anything is sent", func(t *testing.T) {
		h := newDumpHarness(t, Options{})
		id, r := h.server(t)
		r.set(0, "a", "1", -1)
		r.dropAtDump = 1
		if status, _, body, _ := h.get(t, id); status != http.StatusServiceUnavailable {
			t.Errorf("GET backup = %d %s, want 503", status, body)
		}
	})
	t.Run("after the response began", func(t *testing.T) {
		h := newDumpHarness(t, Options{})
		id, r := h.server(t)
		// More than the writer's buffer before the connection drops, so
		// that the 200 has been sent.
		big := strings.Repeat("x", 40<<10)
		for _, k := range []string{"a", "b", "c", "d"} {
			r.set(0, k, big, -1)
		}
		r.scanPage, r.dropAtDump = 2, 3
		status, _, body, err := h.get(t, id)
		if err == nil || status != http.StatusOK {
			t.Fatalf("GET backup = %d with %d bytes, %v; want a 200 with a broken body", status, len(body), err)
		}
	})
}
