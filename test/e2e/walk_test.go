//go:build e2e

// Package e2e walks a new user's first session on a cluster made by `make
// cluster`, with the real flynn binary, real git over ssh and HTTP through
// the router on loopback: add the cluster and a key, create an app, push
// it, scale, route, change its env under load, lose a container, push a
// broken commit, roll back, delete, and push the other sample apps.
//
// Run it with `make e2e` (which brings the cluster up first).
package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/openflynn/flynn/pkg/poll"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// repoRoot is the checkout this test file lives in.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// user is one person at a terminal: a home directory with an ssh key, the
// flynn binary on PATH.
type user struct {
	t      testing.TB
	home   string
	bin    string
	env    []string
	domain string
	router string // host:port of the router's HTTP listener
}

func newUser(t testing.TB) *user {
	root := repoRoot()
	home := t.TempDir()
	bin := filepath.Join(root, "bin")
	if _, err := os.Stat(filepath.Join(bin, "flynn")); err != nil {
		t.Fatalf("bin/flynn missing (make build): %v", err)
	}
	u := &user{t: t, home: home, bin: bin, router: envOr("FLYNN_ROUTER_ADDR", "127.0.0.1:80")}
	u.env = append(os.Environ(),
		"HOME="+home,
		"PATH="+bin+":"+os.Getenv("PATH"),
		"GIT_AUTHOR_NAME=Walk Test", "GIT_AUTHOR_EMAIL=walk@example.test",
		"GIT_COMMITTER_NAME=Walk Test", "GIT_COMMITTER_EMAIL=walk@example.test",
		// ssh finds its files through the passwd entry, not $HOME: name
		// the key, and the known_hosts that `flynn cluster add` wrote
		// gitreceive's host key to. The host key is checked strictly: the
		// first push is verified, with no prompt.
		"GIT_SSH_COMMAND=ssh -i "+filepath.Join(home, ".ssh", "id_ed25519")+" -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="+filepath.Join(home, ".ssh", "known_hosts")+" -o LogLevel=ERROR",
		"FLYNN_CLUSTER=", // the user's own config decides
	)
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	u.mustRun(home, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(home, ".ssh", "id_ed25519"))
	return u
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// run runs a command the way the user would and returns its output.
func (u *user) run(dir, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = u.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (u *user) mustRun(dir, name string, args ...string) string {
	u.t.Helper()
	out, err := u.run(dir, name, args...)
	if err != nil {
		u.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func (u *user) flynn(dir string, args ...string) string {
	u.t.Helper()
	return u.mustRun(dir, filepath.Join(u.bin, "flynn"), args...)
}

// addCluster runs the `flynn cluster add` line that `make cluster` printed.
func (u *user) addCluster() {
	u.t.Helper()
	path := envOr("FLYNN_CLUSTER_ADD_FILE", filepath.Join(repoRoot(), "bin", "cluster-add"))
	b, err := os.ReadFile(path)
	if err != nil {
		u.t.Fatalf("read the cluster-add line (make cluster writes it): %v", err)
	}
	line := strings.TrimSpace(string(b))
	fields := strings.Fields(line)
	if len(fields) < 5 || fields[0] != "flynn" {
		u.t.Fatalf("unexpected cluster-add line %q", line)
	}
	// The line ends "NAME DOMAIN - <<<KEY", the key on stdin where ps
	// cannot see it (older bootstraps wrote "NAME DOMAIN KEY"); bash runs it
	// as the user would paste it.
	u.domain = fields[len(fields)-2]
	if u.domain == "-" {
		u.domain = fields[len(fields)-3]
	}
	u.mustRun(u.home, "bash", "-c", line)
}

// app copies a sample app into a git repository of its own.
func (u *user) app(sample string) string {
	u.t.Helper()
	return u.appAs(sample, sample)
}

// appAs copies a sample app into a git repository named dir.
func (u *user) appAs(sample, name string) string {
	u.t.Helper()
	dir := filepath.Join(u.home, name)
	u.mustRun(u.home, "cp", "-r", filepath.Join(repoRoot(), "test", "apps", sample), dir)
	u.mustRun(dir, "git", "init", "-q", "-b", "main")
	u.mustRun(dir, "git", "add", "-A")
	u.mustRun(dir, "git", "commit", "-q", "-m", "first")
	return dir
}

// push pushes main and checks the build's output.
func (u *user) push(dir string) (string, time.Duration) {
	u.t.Helper()
	start := time.Now()
	out := u.mustRun(dir, "git", "push", "flynn", "main")
	took := time.Since(start)
	for _, want := range []string{"-----> ", "=====> Application deployed"} {
		if !strings.Contains(out, want) {
			u.t.Fatalf("push output lacks %q:\n%s", want, out)
		}
	}
	return out, took
}

// get asks the router for domain's root.
func (u *user) get(domain string) (int, string, error) {
	req, _ := http.NewRequest("GET", "http://"+u.router+"/", nil)
	req.Host = domain
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}

var portRe = regexp.MustCompile(`port (\d+)`)

// ports sends n requests and returns the distinct ports that answered, or
// an error at the first request that did not get a 200.
func (u *user) ports(domain string, n int) (map[string]int, error) {
	seen := map[string]int{}
	for i := 0; i < n; i++ {
		status, body, err := u.get(domain)
		if err != nil || status != 200 {
			return nil, fmt.Errorf("request %d to %s: %d %q %v", i, domain, status, body, err)
		}
		if m := portRe.FindStringSubmatch(body); m != nil {
			seen[m[1]]++
		} else {
			seen[body]++
		}
	}
	return seen, nil
}

type job struct {
	ID      string `json:"id"`
	Release string `json:"release"`
	Type    string `json:"type"`
	State   string `json:"state"`
}

func (u *user) jobs(dir string) []job {
	u.t.Helper()
	var jobs []job
	if err := json.Unmarshal([]byte(u.flynn(dir, "ps", "--json")), &jobs); err != nil {
		u.t.Fatalf("flynn ps --json: %v", err)
	}
	return jobs
}

func (u *user) currentRelease(dir string) string {
	u.t.Helper()
	var rel struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(u.flynn(dir, "release", "show", "--json")), &rel); err != nil {
		u.t.Fatalf("flynn release show --json: %v", err)
	}
	return rel.ID
}

// upOf counts the app's up web jobs of release.
func upOf(jobs []job, release string) int {
	n := 0
	for _, j := range jobs {
		if j.Type == "web" && j.State == "up" && j.Release == release {
			n++
		}
	}
	return n
}

// loadLoop sends requests until stopped, counting failures.
type loadLoop struct {
	stop     atomic.Bool
	requests atomic.Int64
	mu       sync.Mutex
	failures []string
	wg       sync.WaitGroup
}

func (u *user) startLoad(domain string, workers int) *loadLoop {
	l := &loadLoop{}
	for i := 0; i < workers; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for !l.stop.Load() {
				status, body, err := u.get(domain)
				l.requests.Add(1)
				if err != nil || status < 200 || status > 299 {
					l.mu.Lock()
					l.failures = append(l.failures, fmt.Sprintf("%d %q %v", status, body, err))
					l.mu.Unlock()
				}
			}
		}()
	}
	return l
}

func (l *loadLoop) finish() (int64, []string) {
	l.stop.Store(true)
	l.wg.Wait()
	return l.requests.Load(), l.failures
}

func TestWalk(t *testing.T) {
	began := time.Now()
	u := newUser(t)

	// 1. cluster add; key add; create example.
	u.addCluster()
	// Apps this walk creates, left over from an interrupted run on the same
	// cluster, go first; and go at the end whatever happens.
	names := []string{"example", "sample-go", "sample-python", "sample-static", "sample-procfile", "sample-custom",
		"sample-release", "sample-image", "sample-npm", "sample-dockerfile"}
	for _, name := range names {
		_, _ = u.run(u.home, filepath.Join(u.bin, "flynn"), "-a", name, "delete", "--yes")
	}
	t.Cleanup(func() {
		for _, name := range names {
			_, _ = u.run(u.home, filepath.Join(u.bin, "flynn"), "-a", name, "delete", "--yes")
		}
	})
	u.flynn(u.home, "key", "add")
	dir := u.app("nodejs")
	u.flynn(dir, "create", "example")
	if remotes := u.mustRun(dir, "git", "remote", "-v"); !strings.Contains(remotes, "flynn") {
		t.Fatalf("flynn create added no git remote:\n%s", remotes)
	}

	// 2. git push flynn main.
	out, took := u.push(dir)
	t.Logf("first push took %s", took.Round(time.Millisecond))
	t.Logf("push output:\n%s", out)

	// The app has its default route, <app>.<cluster domain>, from create
	// on: the push ends with its URL, and info shows it.
	domain := "example." + u.domain
	if !strings.Contains(out, "=====> http://"+domain+"/") {
		t.Errorf("the push does not end with the app's URL http://%s/:\n%s", domain, out)
	}
	if info := u.flynn(dir, "info"); !strings.Contains(info, "Web URL:   http://"+domain+"/") {
		t.Errorf("flynn info does not show the app's URL:\n%s", info)
	}

	// 3. scale web=3; 30 requests through the default route reach exactly
	// 3 ports.
	u.flynn(dir, "scale", "web=3")
	var (
		seen    map[string]int
		lastErr error
	)
	took = poll.Until(t, 10*time.Second, "3 ports answer through the router", func() bool {
		seen, lastErr = u.ports(domain, 30)
		return lastErr == nil && len(seen) == 3
	})
	t.Logf("the route served all 3 jobs %s after the scale", took.Round(time.Millisecond))
	t.Logf("30 requests reached ports %v", seen)

	// The app's output and one-off jobs, as a user looks at them.
	if out := u.flynn(dir, "log", "-t", "web", "-n", "5"); !strings.Contains(out, "listening on") {
		t.Errorf("flynn log -t web shows no start-up line:\n%s", out)
	}
	// The router's line for each request is in the app's log, as Heroku's.
	poll.UntilNil(t, 30*time.Second, "a router line in flynn log", func() error {
		out := u.flynn(dir, "log", "-t", "router", "-n", "5")
		if !strings.Contains(out, " router: ") || !strings.Contains(out, "method=GET") || !strings.Contains(out, "status=200") || !strings.Contains(out, "host="+domain) {
			return fmt.Errorf("flynn log -t router:\n%s", out)
		}
		return nil
	})
	out, err := u.run(dir, filepath.Join(u.bin, "flynn"), "run", "bash", "-c", "echo one-off in $HOME; exit 3")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 || !strings.Contains(out, "one-off in /app") {
		t.Errorf("flynn run: err %v, output %q; want exit status 3 and the job's output", err, out)
	}
	// The job's output is its own: nothing of the platform's, stdout and
	// stderr apart.
	cmd := exec.Command(filepath.Join(u.bin, "flynn"), "run", "bash", "-c", "echo 'foo bar'; echo oops >&2")
	cmd.Dir, cmd.Env = dir, u.env
	var runOut, runErr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &runOut, &runErr
	if err := cmd.Run(); err != nil || runOut.String() != "foo bar\n" || runErr.String() != "oops\n" {
		t.Errorf("flynn run: err %v, stdout %q, stderr %q; want exactly %q and %q", err, runOut.String(), runErr.String(), "foo bar\n", "oops\n")
	}
	// One-off jobs end: they leave `flynn ps` and are listed, down with
	// their exit status, by `flynn ps --all`; a detached one too.
	u.flynn(dir, "run", "-d", "true")
	poll.Until(t, 15*time.Second, "one-off jobs are down", func() bool {
		for _, j := range u.jobs(dir) {
			if j.Type == "" {
				return false
			}
		}
		return true
	})
	if all := u.flynn(dir, "ps", "--all"); !strings.Contains(all, "crashed (exit 3)") || !strings.Contains(all, "down (exit 0)") {
		t.Errorf("flynn ps --all does not list the ended one-off jobs with their exit status:\n%s", all)
	}

	// What a Heroku user types: aliases, restart under load, open, the
	// app picked without -a, the version.
	t.Run("heroku habits", func(t *testing.T) {
		u := *u
		u.t = t
		herokuHabits(t, &u, dir, domain)
	})

	// 4. env set: a new release serves, with no failed request meanwhile.
	before := u.currentRelease(dir)
	load := u.startLoad(domain, 4)
	u.flynn(dir, "env", "set", "GREETING=hello")
	after := u.currentRelease(dir)
	if after == before {
		t.Fatal("env set made no new release")
	}
	poll.Until(t, 90*time.Second, "the new release runs web=3 and the old none", func() bool {
		jobs := u.jobs(dir)
		return upOf(jobs, after) == 3 && upOf(jobs, before) == 0
	})
	requests, failures := load.finish()
	t.Logf("env set deployment: %d requests, %d failed", requests, len(failures))
	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed during the deployment, first: %s", len(failures), requests, failures[0])
	}

	// 5. scale web=1; kill its container behind the cluster's back.
	u.flynn(dir, "scale", "web=1")
	jobs := u.jobs(dir)
	var victim string
	for _, j := range jobs {
		if j.Type == "web" && j.State == "up" {
			victim = j.ID
		}
	}
	if victim == "" {
		t.Fatalf("no up web job after scale web=1: %+v", jobs)
	}
	ids := strings.Fields(u.mustRun(u.home, "docker", "ps", "-q", "--filter", "label=flynn.job-id="+victim))
	if len(ids) != 1 {
		t.Fatalf("container of job %s: %v", victim, ids)
	}
	_, oldBody, _ := u.get(domain)
	killed := time.Now()
	u.mustRun(u.home, "docker", "kill", ids[0])
	poll.Until(t, 5*time.Second, "a new job serves after the kill", func() bool {
		status, body, err := u.get(domain)
		return err == nil && status == 200 && body != oldBody
	})
	t.Logf("killed container replaced, serving again %s after the kill", time.Since(killed).Round(time.Millisecond))

	// 6. a broken commit fails to build; the old release keeps serving.
	serving := u.currentRelease(dir)
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"name": "broken", "engines": {"node": ">=99"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	u.mustRun(dir, "git", "commit", "-q", "-am", "break it")
	out, err = u.run(dir, "git", "push", "flynn", "main")
	if err == nil || !strings.Contains(out, "Build failed") {
		t.Fatalf("broken push: err %v, output:\n%s", err, out)
	}
	if got := u.currentRelease(dir); got != serving {
		t.Errorf("a failed build changed the release: %s → %s", serving, got)
	}
	if status, body, err := u.get(domain); err != nil || status != 200 {
		t.Errorf("after the failed build the app answers %d %q %v", status, body, err)
	}
	// A push whose web process exits at once fails its deploy, shows why,
	// and leaves the app exactly as it was: release and formation. The
	// fixed push then deploys from them, so it runs web=1 again.
	u.mustRun(dir, "git", "checkout", "-q", "HEAD~1", "--", "package.json")
	server := filepath.Join(dir, "server.js")
	good, err := os.ReadFile(server)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(server, append([]byte("console.error('missing DATABASE_URL'); process.exit(4);\n"), good...), 0o644); err != nil {
		t.Fatal(err)
	}
	u.mustRun(dir, "git", "commit", "-q", "-am", "crash at start")
	crashPush := time.Now()
	out, err = u.run(dir, "git", "push", "flynn", "main")
	if err == nil || !strings.Contains(out, "Deploy failed: web process of release") || !strings.Contains(out, "exit status 4") ||
		!strings.Contains(out, "missing DATABASE_URL") {
		t.Fatalf("push of a crashing web: err %v, output:\n%s", err, out)
	}
	t.Logf("a crashing push failed in %s:\n%s", time.Since(crashPush).Round(time.Millisecond), out)
	if got := u.currentRelease(dir); got != serving {
		t.Errorf("a failed deploy changed the current release: %s → %s", serving, got)
	}
	if got := strings.TrimSpace(u.flynn(dir, "scale")); got != "web=1" {
		t.Errorf("after a failed deploy the formation is %q, want web=1", got)
	}
	if err := os.WriteFile(server, good, 0o644); err != nil {
		t.Fatal(err)
	}
	u.mustRun(dir, "git", "commit", "-q", "-am", "fix the crash")
	if out, err := u.run(dir, "git", "push", "flynn", "main"); err != nil || !strings.Contains(out, "Application deployed") {
		t.Fatalf("push of the fix: err %v, output:\n%s", err, out)
	}
	fixed := u.currentRelease(dir)
	if fixed == serving {
		t.Fatal("the fixed push made no new release")
	}
	if n := upOf(u.jobs(dir), fixed); n != 1 {
		t.Errorf("the fixed release runs %d web jobs, want the old formation's 1", n)
	}
	if status, body, err := u.get(domain); err != nil || status != 200 {
		t.Errorf("after the fixed push the app answers %d %q %v", status, body, err)
	}

	// rollback: the release before the env change serves again.
	u.flynn(dir, "rollback", before)
	if got := u.currentRelease(dir); got != before {
		t.Errorf("rollback deployed %s, want %s", got, before)
	}
	poll.Until(t, 90*time.Second, "the rolled-back release serves", func() bool {
		return upOf(u.jobs(dir), before) >= 1
	})
	if status, _, err := u.get(domain); err != nil || status != 200 {
		t.Errorf("after rollback the app answers %d, %v", status, err)
	}

	// 7. delete: the route answers 404 and the containers are gone.
	appID := strings.TrimSpace(u.flynn(dir, "info", "--json"))
	var info struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal([]byte(appID), &info)
	u.flynn(dir, "delete", "--yes")
	poll.Until(t, 10*time.Second, "the route answers 404", func() bool {
		status, _, err := u.get(domain)
		return err == nil && status == 404
	})
	if info.ID != "" {
		poll.Until(t, 60*time.Second, "the app's containers are gone", func() bool {
			out := u.mustRun(u.home, "docker", "ps", "-q", "--filter", "label=flynn.job", "--filter", "status=running")
			for _, id := range strings.Fields(out) {
				labels := u.mustRun(u.home, "docker", "inspect", "-f", "{{json .Config.Labels}}", id)
				if strings.Contains(labels, info.ID) {
					return false
				}
			}
			return true
		})
	}

	// 8. the same push, scale and route for the other samples.
	for _, sample := range []string{"go", "python", "static", "procfile"} {
		t.Run(sample, func(t *testing.T) {
			u := *u
			u.t = t
			dir := u.app(sample)
			name := "sample-" + sample
			u.flynn(dir, "create", name)
			_, first := u.push(dir)
			t.Logf("push of the %s sample took %s", sample, first.Round(time.Millisecond))
			u.flynn(dir, "scale", "web=3")
			domain := name + "." + u.domain
			want := map[string]string{
				"go": "Hello from Flynn (Go)", "python": "Hello from Flynn (Python)",
				"static": "Hello from Flynn (static)", "procfile": "Hello from Flynn (Procfile)",
			}[sample]
			samePage := sample == "static" || sample == "procfile" // every instance serves the same file
			poll.Until(t, 20*time.Second, "3 instances answer", func() bool {
				seen := map[string]bool{}
				for i := 0; i < 30; i++ {
					status, body, err := u.get(domain)
					if err != nil || status != 200 || !strings.Contains(body, want) {
						return false
					}
					seen[body] = true
				}
				return samePage || len(seen) == 3
			})
			if sample == "go" {
				// A second push restores the build cache (Go's module and
				// build caches), so it is faster than the first.
				u.mustRun(dir, "sh", "-c", "echo '// second push' >> main.go && git commit -q -am second")
				_, second := u.push(dir)
				t.Logf("Go sample: first push %s, second push (cache restored) %s", first.Round(time.Millisecond), second.Round(time.Millisecond))
				if second >= first {
					t.Errorf("the second push (%s) was not faster than the first (%s): the cache did not help", second, first)
				}
			}
			u.flynn(dir, "delete", "--yes")
		})
	}

	// 9. a custom buildpack by BUILDPACK_URL, served from here as a tarball.
	t.Run("buildpack-url", func(t *testing.T) {
		u := *u
		u.t = t
		bp := serveBuildpack(t)
		dir := u.app("static")
		u.flynn(dir, "create", "sample-custom")
		// Set before the first push, as Heroku users do.
		u.flynn(dir, "env", "set", "BUILDPACK_URL="+bp)
		out, _ := u.push(dir)
		if !strings.Contains(out, "custom buildpack compiled") {
			t.Fatalf("the custom buildpack did not run:\n%s", out)
		}
		poll.Until(t, 20*time.Second, "the custom build serves", func() bool {
			status, body, err := u.get("sample-custom." + u.domain)
			return err == nil && status == 200 && strings.Contains(body, "built by the custom buildpack")
		})
		u.flynn(dir, "delete", "--yes")
	})
	// 10. Heroku's release phase and app.json; an image from docker build
	// pushed and reached over TCP; a Dockerfile app pushed with git; an npm
	// registry set for the whole cluster.
	for _, step := range []struct {
		name string
		run  func(*testing.T, *user)
	}{
		{"release phase and app.json", releasePhaseAndAppJSON},
		{"image deploy", imageDeploy},
		{"dockerfile push", dockerfilePush},
		{"cluster build env", clusterBuildEnv},
	} {
		t.Run(step.name, func(t *testing.T) {
			u := *u
			u.t = t
			step.run(t, &u)
		})
	}
	// 11. two nodes: a second node joins; an app scaled across both keeps
	// answering through node 1's router when node 2 dies.
	t.Run("two nodes", func(t *testing.T) {
		u := *u
		u.t = t
		twoNodes(t, &u)
	})
	t.Logf("the walk took %s", time.Since(began).Round(time.Second))
}

// must returns v, or panics on err (for a command a test cannot go on
// without).
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// serveBuildpack serves a small Heroku-API buildpack as a .tgz where a
// build job can fetch it and returns its URL. It writes a page of its own
// and serves it with python3.
func serveBuildpack(t *testing.T) string {
	files := map[string]string{
		"bin/detect":  "#!/usr/bin/env bash\necho Custom\n",
		"bin/compile": "#!/usr/bin/env bash\nset -e\necho 'built by the custom buildpack' > \"$1/index.html\"\necho '-----> custom buildpack compiled'\n",
		"bin/release": "#!/usr/bin/env bash\nprintf -- '---\\ndefault_process_types:\\n  web: exec python3 -m http.server \"$PORT\"\\n'\n",
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, name := range []string{"bin/detect", "bin/compile", "bin/release"} {
		body := files[name]
		if err := tw.WriteHeader(&tar.Header{Name: "custom/" + name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	l := listenForJobs(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(buf.Bytes())
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String() + "/custom.tgz"
}

// listenForJobs listens where build and app jobs reach this machine. A job
// runs in a network namespace of its own and reaches the node only on the
// router's ports (3000-3999 among them), at the app network's gateway:
// serve there, as a server elsewhere on the network would.
func listenForJobs(t *testing.T) net.Listener {
	t.Helper()
	gw := strings.TrimSpace(string(must(exec.Command("docker", "network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", "flynn-apps").Output())))
	var err error
	for port := 3999; port >= 3980; port-- {
		var l net.Listener
		if l, err = net.Listen("tcp", net.JoinHostPort(gw, strconv.Itoa(port))); err == nil {
			return l
		}
	}
	t.Fatalf("no free port for jobs to reach on %s: %v", gw, err)
	return nil
}

// twoNodes joins node 2 (127.0.0.2) when it does not run yet, as the line
// bootstrap prints says, scales an app across both nodes, kills node 2 (its
// flynn-host and containers, at once) and checks that the app keeps
// answering through node 1; then node 2 starts again.
func twoNodes(t *testing.T, u *user) {
	root := repoRoot()
	joined := false
	if out, err := exec.Command(filepath.Join(u.bin, "flynn"), "hosts").CombinedOutput(); err != nil || !strings.Contains(string(out), "127.0.0.2") {
		line, err := os.ReadFile("/var/lib/flynn/join")
		if err != nil {
			t.Fatalf("the join line bootstrap wrote: %v", err)
		}
		began := time.Now()
		cmd := exec.Command("bash", "-c", strings.TrimSpace(string(line)))
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "FLYNN_NODE=2", "FLYNN_SKIP_BUILD=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("joining node 2: %v\n%s", err, out)
		}
		joined = true
		poll.Until(t, time.Minute, "node 2 listed by flynn hosts", func() bool {
			out, err := u.run(u.home, filepath.Join(u.bin, "flynn"), "hosts")
			return err == nil && strings.Contains(out, "127.0.0.2") && !strings.Contains(out, "unreachable")
		})
		t.Logf("node 2 joined in %s", time.Since(began).Round(time.Millisecond))
	}
	t.Cleanup(func() {
		if joined {
			_, _ = u.run(root, filepath.Join(root, "script/cluster"), "start", "2")
		}
	})

	dir := u.appAs("static", "two-nodes")
	u.flynn(dir, "create", "sample-two")
	t.Cleanup(func() { _, _ = u.run(u.home, filepath.Join(u.bin, "flynn"), "-a", "sample-two", "delete", "--yes") })
	u.push(dir)
	u.flynn(dir, "scale", "web=4")
	domain := "sample-two." + u.domain
	var byHost map[string]int
	poll.Until(t, time.Minute, "web jobs on both nodes", func() bool {
		byHost = map[string]int{}
		var jobs []struct {
			Type   string `json:"type"`
			State  string `json:"state"`
			HostID string `json:"host_id"`
		}
		if err := json.Unmarshal([]byte(u.flynn(dir, "ps", "--json")), &jobs); err != nil {
			return false
		}
		for _, j := range jobs {
			if j.Type == "web" && j.State == "up" {
				byHost[j.HostID]++
			}
		}
		return len(byHost) == 2
	})
	t.Logf("web jobs per node: %v", byHost)
	poll.Until(t, 20*time.Second, "the app answers", func() bool {
		status, _, err := u.get(domain)
		return err == nil && status == 200
	})
	load := u.startLoad(domain, 2)
	if out, err := u.run(root, filepath.Join(root, "script/cluster"), "kill", "2"); err != nil {
		t.Fatalf("script/cluster kill 2: %v\n%s", err, out)
	}
	// Node 1 goes on serving with its own jobs; a request in flight on node
	// 2 when it died may fail, one per worker at most.
	poll.Holds(t, 15*time.Second, "the app answers through node 1 with node 2 dead", func() bool {
		status, _, err := u.get(domain)
		return err == nil && status == 200
	})
	requests, failures := load.finish()
	t.Logf("node 2 lost: %d requests, %d failed", requests, len(failures))
	if len(failures) > 2 {
		t.Errorf("%d of %d requests failed when node 2 died, first: %s", len(failures), requests, failures[0])
	}
	if out, err := u.run(root, filepath.Join(root, "script/cluster"), "start", "2"); err != nil {
		t.Fatalf("script/cluster start 2: %v\n%s", err, out)
	}
	poll.Until(t, time.Minute, "node 2 back", func() bool {
		out, err := u.run(u.home, filepath.Join(u.bin, "flynn"), "hosts")
		return err == nil && strings.Contains(out, "127.0.0.2") && !strings.Contains(out, "unreachable")
	})
}
