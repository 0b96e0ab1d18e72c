package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openflynn/flynn/cli/config"
	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/controller/controllertest"
	"github.com/openflynn/flynn/controller/server"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/poll"
)

// pgRunner runs the postgres tools' jobs in memory, told apart by their
// entrypoint: a pg_dump job runs dump, the restore job (a shell) reads its
// stdin as pg_restore would and exits with restoreStatus, and any other
// job (psql) is the harness's echo job.
type pgRunner struct {
	*fakeRunner
	// received counts the bytes restore jobs got on stdin.
	received atomic.Int64

	pmu sync.Mutex
	// dump writes the pg_dump job's output with emit and returns its exit
	// status (setDump).
	dump func(emit func(host.FrameType, []byte) error) int
	// restoreStatus is the exit status of restore jobs (setRestoreStatus).
	restoreStatus int
	// restored hashes what the last restore job got on stdin.
	restored hash.Hash
}

func (p *pgRunner) setDump(dump func(emit func(host.FrameType, []byte) error) int) {
	p.pmu.Lock()
	defer p.pmu.Unlock()
	p.dump = dump
}

func (p *pgRunner) setRestoreStatus(status int) {
	p.pmu.Lock()
	defer p.pmu.Unlock()
	p.restoreStatus = status
}

var _ server.JobRunner = (*pgRunner)(nil)

func (p *pgRunner) RunAttached(ctx context.Context, spec *server.JobSpec) (*controller.Job, io.ReadWriteCloser, error) {
	var run func(conn net.Conn)
	switch {
	case slices.Equal(spec.Entrypoint, []string{"pg_dump"}):
		run = p.runDump
	case len(spec.Entrypoint) == 3 && spec.Entrypoint[0] == "/bin/sh":
		run = p.runRestore
	default:
		return p.fakeRunner.RunAttached(ctx, spec)
	}
	job, err := p.RunJob(ctx, spec)
	if err != nil {
		return nil, nil, err
	}
	ours, theirs := net.Pipe()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer ours.Close()
		run(ours)
	}()
	return job, theirs, nil
}

func (p *pgRunner) runDump(conn net.Conn) {
	// pg_dump reads no input: drain the client's frames until it hangs up.
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		_, _ = io.Copy(io.Discard, conn)
	}()
	var mu sync.Mutex
	emit := func(t host.FrameType, b []byte) error {
		mu.Lock()
		defer mu.Unlock()
		return host.WriteFrame(conn, t, b)
	}
	p.pmu.Lock()
	dump := p.dump
	p.pmu.Unlock()
	status := dump(emit)
	_ = emit(host.FrameExit, host.ExitPayload(status))
}

func (p *pgRunner) runRestore(conn net.Conn) {
	p.pmu.Lock()
	p.restored = sha256.New()
	status := p.restoreStatus
	p.pmu.Unlock()
	for {
		f, err := host.ReadFrame(conn)
		if err != nil {
			return
		}
		switch f.Type {
		case host.FrameStdin:
			p.pmu.Lock()
			p.restored.Write(f.Payload)
			p.pmu.Unlock()
			p.received.Add(int64(len(f.Payload)))
		case host.FrameStdinEOF:
			_ = host.WriteFrame(conn, host.FrameStderr, []byte("pg_restore: done\n"))
			_ = host.WriteFrame(conn, host.FrameExit, host.ExitPayload(status))
			return
		}
	}
}

func (p *pgRunner) restoredSum() []byte {
	p.pmu.Lock()
	defer p.pmu.Unlock()
	return p.restored.Sum(nil)
}

// pgFixture is a cluster as `flynn pg` needs it: the postgres tools' app,
// a postgres provider, and app "example" with a database.
type pgFixture struct {
	h      *harness
	runner *pgRunner
	app    *controller.App
	tools  *controller.Artifact
}

// newPGHarness starts a controller whose runner is a pgRunner, points the
// CLI at it as the person "alice", and sets up the fixture.
func newPGHarness(t *testing.T) *pgFixture {
	t.Helper()
	h := newHarness(t)
	runner := &pgRunner{fakeRunner: &fakeRunner{logs: map[string][]host.LogLine{}}}
	t.Cleanup(runner.wg.Wait)
	ctrl := controllertest.New(t, pg.Server(t).NewDatabase(t), controllertest.Options{
		Key: testKey, Runner: runner, CompleteDeployments: func(*controller.Deployment) bool { return true },
	})
	h.api, h.url, h.runner = client.New(ctrl.HTTP.URL, testKey), ctrl.HTTP.URL, runner.fakeRunner
	f, err := config.Load(h.env.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	f.Clusters[0].ControllerURL = ctrl.HTTP.URL
	if err := f.Save(h.env.ConfigPath); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	toolsApp := &controller.App{Name: postgresToolsApp, System: true}
	if err := h.api.CreateApp(ctx, toolsApp); err != nil {
		t.Fatal(err)
	}
	tools := &controller.Artifact{Type: controller.ArtifactTypeDocker, URI: "flynn/postgres-api:test"}
	if err := h.api.CreateArtifact(ctx, tools); err != nil {
		t.Fatal(err)
	}
	rel := &controller.Release{AppID: toolsApp.ID, ArtifactID: tools.ID, Env: map[string]string{"SECRET": "provider key"}}
	if err := h.api.CreateRelease(ctx, rel); err != nil {
		t.Fatal(err)
	}
	if _, err := h.api.SetAppRelease(ctx, toolsApp.ID, rel.ID); err != nil {
		t.Fatal(err)
	}
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(controller.ProvisionedResource{ID: "example", Env: map[string]string{
			"DATABASE_URL": "postgres://example:pw@postgres.example.test:3432/example",
			"PGHOST":       "postgres.example.test", "PGPORT": "3432", "PGUSER": "example", "PGPASSWORD": "pw", "PGDATABASE": "example",
		}})
	}))
	t.Cleanup(provider.Close)
	if err := h.api.CreateProvider(ctx, &controller.Provider{Name: postgresProvider, URL: provider.URL}); err != nil {
		t.Fatal(err)
	}
	app := h.app("example")
	h.deploy(app, map[string]string{"KEEP": "yes"})
	if _, err := h.api.ProvisionResource(ctx, postgresProvider, &controller.ResourceRequest{Apps: []string{app.ID}}); err != nil {
		t.Fatal(err)
	}
	// What follows is done as a person would: the tools' app is a system
	// app, which a person may read but not change.
	h.usePersonKey("alice")
	return &pgFixture{h: h, runner: runner, app: app, tools: tools}
}

// lastJob is the spec of the last job the runner ran.
func (f *pgFixture) lastJob(t *testing.T) *server.JobSpec {
	t.Helper()
	specs := f.runner.ran()
	if len(specs) == 0 {
		t.Fatal("no job ran")
	}
	return specs[len(specs)-1]
}

// TestPgJobs: each command runs a one-off job of the app (its env, its
// network) from the tools' image, with the tool as entrypoint.
func TestPgJobs(t *testing.T) {
	f := newPGHarness(t)
	h := f.h
	dumpFile := filepath.Join(t.TempDir(), "example.dump")
	f.runner.setDump(func(emit func(host.FrameType, []byte) error) int {
		_ = emit(host.FrameStdout, []byte(pgArchiveMagic+"\x00data"))
		return 0
	})
	if err := os.WriteFile(dumpFile+".in", []byte(pgArchiveMagic+"\x01\x0e"), 0o600); err != nil {
		t.Fatal(err)
	}
	term := &fakeTerminal{resizes: make(chan struct{})}

	tests := []struct {
		name       string
		args       []string
		terminal   bool
		entrypoint []string
		jobArgs    []string
		tty        bool
	}{
		{"psql with a terminal", []string{"psql"}, true, []string{"psql"}, nil, true},
		{"psql with args, no TTY", []string{"psql", "-T", "--", "-c", "select 1"}, true, []string{"psql"}, []string{"-c", "select 1"}, false},
		{"psql without a terminal", []string{"psql"}, false, []string{"psql"}, nil, false},
		{"dump", []string{"dump", "-f", dumpFile}, true, []string{"pg_dump"}, pgDumpArgs(), false},
		{"restore", []string{"restore", "--yes", "-f", dumpFile + ".in"}, true, []string{"/bin/sh", "-c", pgRestoreScript}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.env.Terminal = nil
			if tt.terminal {
				h.env.Terminal = term
			}
			defer func() { h.env.Terminal = nil }()
			if res := h.runInput("", append([]string{"-a", "example", "pg"}, tt.args...)...); res.code != 0 {
				t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
			}
			spec := f.lastJob(t)
			if spec.Artifact.ID != f.tools.ID || spec.Job.AppID != f.app.ID {
				t.Errorf("ran artifact %s in app %s, want the tools' %s in example's %s", spec.Artifact.ID, spec.Job.AppID, f.tools.ID, f.app.ID)
			}
			if !slices.Equal(spec.Entrypoint, tt.entrypoint) || !slices.Equal(spec.Job.Args, tt.jobArgs) || spec.TTY != tt.tty {
				t.Errorf("ran %q %q with TTY %v, want %q %q with TTY %v", spec.Entrypoint, spec.Job.Args, spec.TTY, tt.entrypoint, tt.jobArgs, tt.tty)
			}
			// The app's env (its database's), not the tools' app's.
			if spec.Env["PGDATABASE"] != "example" || spec.Env["KEEP"] != "yes" || spec.Env["SECRET"] != "" {
				t.Errorf("job env %v, want example's", spec.Env)
			}
			if hj := spec.HostJob("host1"); hj.Config.HostNetwork || hj.Artifact != f.tools.URI || !slices.Equal(hj.Config.Entrypoint, tt.entrypoint) {
				t.Errorf("host job %+v: want the tools' image with the entrypoint, on the app network", hj)
			}
		})
	}
}

// archive is a reproducible stand-in for a pg_dump archive of size bytes:
// the magic, every byte value, then pseudo-random bytes.
type archive struct {
	size int64
	rng  *rand.ChaCha8
	head []byte
	done int64
}

func newArchive(size int64) *archive {
	head := []byte(pgArchiveMagic)
	for b := range 256 {
		head = append(head, byte(b))
	}
	return &archive{size: size, rng: rand.NewChaCha8([32]byte{1, 8}), head: head}
}

func (a *archive) Read(p []byte) (int, error) {
	if a.done == a.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), a.size-a.done)]
	n := 0
	if a.done < int64(len(a.head)) {
		n = copy(p, a.head[a.done:])
	}
	_, _ = a.rng.Read(p[n:])
	a.done += int64(len(p))
	return len(p), nil
}

func sum(t *testing.T, r io.Reader) ([]byte, int64) {
	t.Helper()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		t.Fatal(err)
	}
	return h.Sum(nil), n
}

// dumpFrames returns a dump job that emits the archive of size bytes as
// stdout frames of varied sizes, up to the largest a frame may be, with
// pg_dump's chatter on stderr between them. After each chunk it calls wait
// with the bytes sent so far, which may hold the job back; an error from
// wait fails the job.
func dumpFrames(size int64, wait func(sent int64) error) func(emit func(host.FrameType, []byte) error) int {
	chunkSizes := []int{1, 255, 4096, 32 << 10, host.MaxFramePayload, 77777, 3}
	return func(emit func(host.FrameType, []byte) error) int {
		a := newArchive(size)
		var sent int64
		for i := 0; ; i++ {
			buf := make([]byte, chunkSizes[i%len(chunkSizes)])
			n, err := a.Read(buf)
			if errors.Is(err, io.EOF) {
				return 0
			}
			if emit(host.FrameStdout, buf[:n]) != nil || emit(host.FrameStderr, []byte("pg_dump: dumping contents of table\n")) != nil {
				return 1
			}
			sent += int64(n)
			if err := wait(sent); err != nil {
				_ = emit(host.FrameError, []byte(err.Error()))
				return 1
			}
		}
	}
}

// TestPgDumpStreams: a dump of several MiB holding every byte value lands
// in the file byte for byte, without pg_dump's stderr; and it is written
// as it comes, not held in memory: the job sends each chunk only once
// the ones before are on disk.
func TestPgDumpStreams(t *testing.T) {
	f := newPGHarness(t)
	const size = 6<<20 + 123
	dir := f.h.env.Dir
	onDisk := func() (int64, error) {
		partial, err := filepath.Glob(filepath.Join(dir, ".example.dump.*.partial"))
		if err != nil || len(partial) != 1 {
			return 0, fmt.Errorf("partial files %v, %v; want one", partial, err)
		}
		fi, err := os.Stat(partial[0])
		if err != nil {
			return 0, err
		}
		return fi.Size(), nil
	}
	f.runner.setDump(dumpFrames(size, func(sent int64) error {
		return poll.Wait(context.Background(), 10*time.Second, func() error {
			n, err := onDisk()
			if err == nil && n < sent {
				err = fmt.Errorf("%d of the %d bytes sent are on disk", n, sent)
			}
			return err
		})
	}))
	res := f.h.run("-a", "example", "pg", "dump", "-f", "example.dump") // relative to the working directory
	if res.code != 0 || res.stdout != "" {
		t.Fatalf("dump: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	if !strings.HasPrefix(res.stderr, "pg_dump: dumping contents of table\n") {
		t.Errorf("stderr %.80q…, want pg_dump's", res.stderr)
	}
	file, err := os.Open(filepath.Join(dir, "example.dump"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	gotSum, gotSize := sum(t, file)
	wantSum, _ := sum(t, newArchive(size))
	if gotSize != size || !bytes.Equal(gotSum, wantSum) {
		t.Fatalf("dump file: %d bytes, sha256 %x; want %d bytes, %x", gotSize, gotSum, size, wantSum)
	}
	if fi, err := file.Stat(); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("dump file mode %v, %v; want 0600", fi.Mode(), err)
	}
	if leftover, _ := filepath.Glob(filepath.Join(dir, ".*.partial")); len(leftover) != 0 {
		t.Errorf("partial files left: %v", leftover)
	}
}

func TestPgDumpToStdout(t *testing.T) {
	f := newPGHarness(t)
	const size = 700 << 10
	f.runner.setDump(dumpFrames(size, func(int64) error { return nil }))
	wantSum, _ := sum(t, newArchive(size))
	for _, args := range [][]string{{}, {"-f", "-"}} {
		res := f.h.run(append([]string{"-a", "example", "pg", "dump"}, args...)...)
		gotSum, gotSize := sum(t, strings.NewReader(res.stdout))
		if res.code != 0 || gotSize != size || !bytes.Equal(gotSum, wantSum) {
			t.Fatalf("dump %q: exit %d, %d bytes on stdout (sha256 %x), stderr %q; want %d bytes, %x", args, res.code, gotSize, gotSum, res.stderr, size, wantSum)
		}
	}
}

// TestPgDumpFails: a failed dump says pg_dump's error, exits non-zero and
// leaves neither a partial file nor a changed old one.
func TestPgDumpFails(t *testing.T) {
	f := newPGHarness(t)
	path := filepath.Join(f.h.env.Dir, "old.dump")
	if err := os.WriteFile(path, []byte("yesterday's dump"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.runner.setDump(func(emit func(host.FrameType, []byte) error) int {
		_ = emit(host.FrameStdout, bytes.Repeat([]byte{0}, 100<<10))
		_ = emit(host.FrameStderr, []byte("pg_dump: error: query failed: ERROR:  permission denied for table secrets\n"))
		return 1
	})
	res := f.h.run("-a", "example", "pg", "dump", "-f", path)
	if res.code == 0 {
		t.Fatal("a failed dump exited 0")
	}
	wantErr := "pg_dump: error: query failed: ERROR:  permission denied for table secrets\nflynn: pg_dump exited with status 1; " + path + " not written\n"
	if res.stderr != wantErr {
		t.Errorf("stderr %q, want %q", res.stderr, wantErr)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "yesterday's dump" {
		t.Errorf("old dump now %q, %v; want it unchanged", b, err)
	}
	if leftover, _ := filepath.Glob(filepath.Join(f.h.env.Dir, ".*.partial")); len(leftover) != 0 {
		t.Errorf("partial files left: %v", leftover)
	}
}

// gatedReader serves r in chunks, each only once the restore job has
// received every byte served before it: a restore that read its whole
// input before sending it would wait for ever.
type gatedReader struct {
	r      io.Reader
	runner *pgRunner
	served int64
	chunk  int
}

func (g *gatedReader) Read(p []byte) (int, error) {
	err := poll.Wait(context.Background(), 10*time.Second, func() error {
		if got := g.runner.received.Load(); got < g.served {
			return fmt.Errorf("the job received %d of the %d bytes served", got, g.served)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n, err := g.r.Read(p[:min(len(p), g.chunk)])
	g.served += int64(n)
	return n, err
}

// TestPgRestore: the archive reaches pg_restore's stdin byte for byte and
// as it is read, and pg_restore's exit status is flynn's.
func TestPgRestore(t *testing.T) {
	f := newPGHarness(t)
	h := f.h
	const size = 5<<20 + 7
	path := filepath.Join(t.TempDir(), "example.dump")
	file, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(file, newArchive(size)); err != nil {
		t.Fatal(err)
	}
	if err := file.Close(); err != nil {
		t.Fatal(err)
	}
	wantSum, _ := sum(t, newArchive(size))

	res := h.run("-a", "example", "pg", "restore", "-f", path)
	if res.code != 0 || res.stderr != "pg_restore: done\n" {
		t.Fatalf("restore: exit %d, stderr %q", res.code, res.stderr)
	}
	if got := f.runner.restoredSum(); f.runner.received.Load() != size || !bytes.Equal(got, wantSum) {
		t.Fatalf("the job received %d bytes, sha256 %x; want %d, %x", f.runner.received.Load(), got, size, wantSum)
	}

	// From stdin, gated: each chunk is read only once the job has the
	// ones before. pg_restore's failure is flynn's exit status.
	f.runner.received.Store(0)
	f.runner.setRestoreStatus(1)
	var stdout, stderr bytes.Buffer
	env := h.env
	env.Stdin, env.Stdout, env.Stderr = &gatedReader{r: newArchive(size), runner: f.runner, chunk: 300 << 10}, &stdout, &stderr
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if code := Run(ctx, []string{"flynn", "-a", "example", "pg", "restore"}, &env); code != 1 {
		t.Fatalf("restore from stdin: exit %d (stderr %q), want pg_restore's 1", code, stderr.String())
	}
	if got := f.runner.restoredSum(); f.runner.received.Load() != size || !bytes.Equal(got, wantSum) {
		t.Fatalf("from stdin the job received %d bytes, sha256 %x; want %d, %x", f.runner.received.Load(), got, size, wantSum)
	}
}

// TestPgRestoreRefuses: what is not an archive is refused before any job
// runs, and from a terminal the app's name must be typed first.
func TestPgRestoreRefuses(t *testing.T) {
	f := newPGHarness(t)
	h := f.h
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	notArchive, empty, good := write("schema.sql", "CREATE TABLE x ();\n"), write("empty.dump", ""), write("good.dump", pgArchiveMagic+"\x01\x0e\x00")

	h.fails("schema.sql is not a pg_dump archive in the custom format", "-a", "example", "pg", "restore", "-f", notArchive)
	h.fails("empty.dump is not a pg_dump archive", "-a", "example", "pg", "restore", "-f", empty)
	h.fails("no such file", "-a", "example", "pg", "restore", "-f", filepath.Join(dir, "missing.dump"))
	if res := h.runInput("plain text", "-a", "example", "pg", "restore"); res.code != 1 || !strings.Contains(res.stderr, "stdin is not a pg_dump archive") {
		t.Errorf("restore of text on stdin: exit %d, stderr %q", res.code, res.stderr)
	}
	h.fails("takes no arguments", "-a", "example", "pg", "restore", good)

	h.env.Terminal = &fakeTerminal{resizes: make(chan struct{})}
	defer func() { h.env.Terminal = nil }()
	h.fails("give the archive with -f FILE or on stdin", "-a", "example", "pg", "restore")
	if res := h.runInput("other\n", "-a", "example", "pg", "restore", "-f", good); res.code != 1 || !strings.Contains(res.stderr, `flynn: confirmation "other" does not match "example"; nothing restored`) {
		t.Errorf("restore confirmed with another name: exit %d, stderr %q", res.code, res.stderr)
	}
	if n := len(f.runner.ran()); n != 0 {
		t.Fatalf("%d jobs ran after refusals, want none", n)
	}
	if res := h.runInput("example\n", "-a", "example", "pg", "restore", "-f", good); res.code != 0 || !strings.Contains(res.stderr, "Type the app's name to confirm") {
		t.Errorf("restore confirmed: exit %d, stderr %q", res.code, res.stderr)
	}
	if n := len(f.runner.ran()); n != 1 {
		t.Fatalf("%d jobs ran after the confirmation, want 1", n)
	}
}

// TestPgErrors: an app without a database, and a cluster without the
// tools, are named as such.
func TestPgErrors(t *testing.T) {
	f := newPGHarness(t)
	h := f.h
	h.app("plain")
	for _, cmd := range [][]string{{"psql"}, {"dump", "-f", filepath.Join(t.TempDir(), "x.dump")}} {
		h.fails("app plain has no postgres database: flynn -a plain resource add postgres", append([]string{"-a", "plain", "pg"}, cmd...)...)
	}
	h.fails("postgres-api is a system app", "-a", "postgres-api", "pg", "psql")
	if n := len(f.runner.ran()); n != 0 {
		t.Fatalf("%d jobs ran, want none", n)
	}

	// The psql exit status is flynn's (the echo job exits as its args say).
	if res := h.run("-a", "example", "pg", "psql", "--", "exit", "3"); res.code != 3 {
		t.Errorf("psql exit status: flynn exited %d (stderr %q), want 3", res.code, res.stderr)
	}

	env := h.env
	env.ClusterKey = testKey
	h.env = env
	h.ok("--system", "-a", "postgres-api", "delete", "--yes")
	h.fails("the cluster has no postgres-api app", "-a", "example", "pg", "psql")
}
