package host

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openflynn/flynn/discoverd"
)

// FuzzJobSpec decodes arbitrary PUT /host/jobs/:id bodies the way the host
// API does (unknown fields refused, one JSON value) and validates them.
// What Validate accepts can be run as it says: its id and volume names
// stay inside the directories they name, its env can be passed to a
// process as NAME=value, its ports are distinct real ports, its services
// are names discoverd takes, its check path makes a request to the job
// itself, and it encodes to JSON that decodes to the same job.
func FuzzJobSpec(f *testing.F) {
	for _, s := range []string{
		`{"id":"h1-abc","artifact":"img"}`,
		`{"id":"h1-abc","artifact":"img","config":{"args":["sh","-c","x"],"env":{"PORT":"1","http_proxy":"p"},"ports":[{"port":80,"proto":"http","service":"web","check_path":"/health"},{"proto":"tcp"}],"mounts":[{"source":"data","target":"/data","read_only":true}],"resources":{"memory":1073741824,"cpu_shares":1024,"pids":512,"disk":1},"stop_grace":"1.5s","stdin":true,"tty":true,"persistent":true},"metadata":{"flynn.app-id":"a"}}`,
		`{"id":"h1-abc","artifact":"img","config":{"host_network":true,"mounts":[{"type":"bind","source":"/srv/x","target":"/x"}],"stop_grace":1000}}`,
		`{"id":"h1-abc","artifact":"img","config":{"env":{"my-var":"x"}}}`,
		`{"id":"h1-abc","artifact":"img","config":{"env":{"A":"nul\u0000inside"}}}`,
		`{"id":"h1-abc","artifact":"img","config":{"ports":[{"port":80},{"port":80}]}}`,
		`{"id":"h1-abc","artifact":"img","config":{"ports":[{"service":"web-"}]}}`,
		`{"id":"h1-abc","artifact":"img","config":{"ports":[{"check_path":"/\n"}]}}`,
		`{"id":"h1-abc","artifact":"img","config":{"ports":[{"check_path":"/ok?x=1#y"}]}}`,
		`{"id":"h1-abc","artifact":"img","config":{"mounts":[{"source":"..","target":"/x"}]}}`,
		`{"id":"h1-abc","artifact":"img","config":{"mounts":[{"source":"a..","target":"/x"}]}}`,
		`{"id":"../x","artifact":"img"}`,
		`{"id":"h1-abc","artifact":"img","config":{"stop_grace":"-1s"}}`,
		`{"id":"h1-abc","artifact":"img","config":{"resources":{"memory":1024}}}`,
		`{"id":"h1-abc","artifact":"img","colour":"red"}`,
		`{"id":"h1-abc","artifact":"img"} {}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		j, err := decodeJob(body)
		if err != nil || j.Validate() != nil {
			return
		}
		checkRunnable(t, j)

		// Encoded and decoded again, it is the same job: a fixed point of
		// the encoding, and still valid.
		enc, err := json.Marshal(j)
		if err != nil {
			t.Fatalf("accepted %s; encode: %v", body, err)
		}
		again, err := decodeJob(enc)
		if err != nil {
			t.Fatalf("accepted %s; its encoding %s does not decode: %v", body, enc, err)
		}
		if err := again.Validate(); err != nil {
			t.Fatalf("accepted %s; decoded from its encoding %s it is refused: %v", body, enc, err)
		}
		if enc2, _ := json.Marshal(again); !bytes.Equal(enc, enc2) {
			t.Fatalf("accepted %s; encoding %s decodes to a job encoding as %s", body, enc, enc2)
		}
	})
}

// decodeJob reads a job as the host API's handler does.
func decodeJob(body []byte) (*Job, error) {
	var j Job
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, io.ErrUnexpectedEOF
	}
	return &j, nil
}

// checkRunnable fails t unless a validated job can be run as it says.
func checkRunnable(t *testing.T, j *Job) {
	t.Helper()
	// The id names the job's container and its files: one local name.
	if !filepath.IsLocal(j.ID) || strings.ContainsAny(j.ID, `/\`) {
		t.Fatalf("job id %q would leave its directory", j.ID)
	}
	if strings.TrimSpace(j.Artifact) == "" {
		t.Fatalf("job %s has no artifact", j.ID)
	}
	c := j.Config
	for name, value := range c.Env {
		// The kernel takes NAME=value strings ending at NUL: the name must
		// come back from the entry, and nothing may be cut short.
		k, v, _ := strings.Cut(name+"="+value, "=")
		if name == "" || k != name || v != value || strings.ContainsRune(name+value, 0) {
			t.Fatalf("job %s: env %q=%q cannot be passed to a process as it is", j.ID, name, value)
		}
		if !ValidEnvName(name) {
			t.Fatalf("job %s: env name %q breaks the one rule, %s", j.ID, name, EnvNamePattern)
		}
	}
	fixed := map[int]bool{}
	for i, p := range c.Ports {
		if p.Port < 0 || p.Port > 65535 {
			t.Fatalf("job %s: port %d out of range", j.ID, p.Port)
		}
		if p.Port != 0 {
			if fixed[p.Port] {
				t.Fatalf("job %s: port %d twice", j.ID, p.Port)
			}
			fixed[p.Port] = true
		}
		if p.Proto != "" && p.Proto != "tcp" && p.Proto != "http" {
			t.Fatalf("job %s: port %d has proto %q", j.ID, i, p.Proto)
		}
		// The host registers the port in its service once it is up.
		if p.Service != "" {
			if err := discoverd.ValidateServiceName(p.Service); err != nil {
				t.Fatalf("job %s: port %d's service: host accepts it, discoverd refuses it: %v", j.ID, i, err)
			}
		}
		// The readiness check GETs http://<job's address><check path>.
		if p.CheckPath != "" {
			const addr = "10.0.0.2:55000"
			req, err := http.NewRequest(http.MethodGet, "http://"+addr+p.CheckPath, nil)
			if err != nil {
				t.Fatalf("job %s: check path %q makes no request: %v", j.ID, p.CheckPath, err)
			}
			if req.URL.Host != addr {
				t.Fatalf("job %s: check path %q checks host %q, not the job", j.ID, p.CheckPath, req.URL.Host)
			}
			if u, err := url.Parse(req.URL.String()); err != nil || u.Host != addr {
				t.Fatalf("job %s: check path %q: the request's URL %s reads back as %v, %v", j.ID, p.CheckPath, req.URL, u, err)
			}
		}
	}
	for i, m := range c.Mounts {
		if !strings.HasPrefix(m.Target, "/") {
			t.Fatalf("job %s: mount %d target %q is not absolute", j.ID, i, m.Target)
		}
		switch m.MountType() {
		case MountVolume:
			// A volume is a directory under the host's state directory.
			if !filepath.IsLocal(m.Source) || strings.ContainsAny(m.Source, `/\`) {
				t.Fatalf("job %s: volume %q would leave the volumes directory", j.ID, m.Source)
			}
		case MountBind:
			if !c.HostNetwork || !filepath.IsAbs(m.Source) {
				t.Fatalf("job %s: bind mount of %q accepted without host network or absolute path", j.ID, m.Source)
			}
		default:
			t.Fatalf("job %s: mount %d has type %q", j.ID, i, m.MountType())
		}
	}
	if r := c.Resources; r.Memory < 0 || r.CPUShares < 0 || r.Pids < 0 || r.Disk < 0 {
		t.Fatalf("job %s: negative limits %+v", j.ID, r)
	}
	if c.Grace() <= 0 {
		t.Fatalf("job %s: stop grace %v", j.ID, c.Grace())
	}
}
