//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/pkg/poll"
)

// flynnWith runs flynn with extra environment variables.
func (u *user) flynnWith(dir string, env []string, args ...string) (string, error) {
	ctx := u.t.Context()
	cmd := exec.CommandContext(ctx, filepath.Join(u.bin, "flynn"), args...)
	cmd.Dir = dir
	cmd.Env = append(append([]string{}, u.env...), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// webJobIDs are the ids of the app's up web jobs.
func (u *user) webJobIDs(dir string) map[string]bool {
	ids := map[string]bool{}
	for _, j := range u.jobs(dir) {
		if j.Type == "web" && j.State == "up" {
			ids[j.ID] = true
		}
	}
	return ids
}

// herokuHabits is what a Heroku user types, on the walk's app: it runs
// web=3 at domain from dir.
func herokuHabits(t *testing.T, u *user, dir, domain string) {
	// Heroku's names for the commands.
	if out := u.flynn(dir, "logs", "-t", "web", "-n", "20"); !strings.Contains(out, "listening on") {
		t.Errorf("flynn logs:\n%s", out)
	}
	if out := u.flynn(dir, "releases"); !strings.Contains(out, "v1") {
		t.Errorf("flynn releases:\n%s", out)
	}
	u.flynn(dir, "config:set", "HABIT=heroku")
	if got := strings.TrimSpace(u.flynn(dir, "config:get", "HABIT")); got != "heroku" {
		t.Errorf("config:get HABIT = %q", got)
	}
	if out := u.flynn(dir, "config"); !strings.Contains(out, "HABIT=heroku") {
		t.Errorf("flynn config:\n%s", out)
	}
	u.flynn(dir, "config:unset", "HABIT")

	// The app without -a: $FLYNN_APP anywhere, -r REMOTE in the clone,
	// and a clone that `remote add` gave the app's remote.
	elsewhere := t.TempDir()
	if out, err := u.flynnWith(elsewhere, []string{"FLYNN_APP=example"}, "info"); err != nil || !strings.Contains(out, "=== example") {
		t.Errorf("FLYNN_APP=example flynn info: %v\n%s", err, out)
	}
	if out := u.flynn(dir, "-r", "flynn", "info"); !strings.Contains(out, "=== example") {
		t.Errorf("flynn -r flynn info:\n%s", out)
	}
	clone := filepath.Join(t.TempDir(), "clone")
	u.mustRun(u.home, "git", "clone", "-q", dir, clone)
	u.flynn(clone, "-a", "example", "remote", "add")
	if out := u.flynn(clone, "info"); !strings.Contains(out, "=== example") {
		t.Errorf("info in a clone after remote add:\n%s", out)
	}

	// open: without a terminal it prints the URL.
	if out := u.flynn(dir, "open"); !strings.Contains(out, "http://"+domain+"/") {
		t.Errorf("flynn open printed %q, want the URL http://%s/", out, domain)
	}
	// The version, the CLI's and the cluster's.
	if out := u.flynn(dir, "--version"); !regexp.MustCompile(`(?m)^flynn \S+\ncluster: \S+ \(`).MatchString(out) {
		t.Errorf("flynn --version:\n%s", out)
	}

	// restart: every web job is replaced, one by one, with no failed
	// request.
	before := u.webJobIDs(dir)
	load := u.startLoad(domain, 4)
	out := u.flynn(dir, "restart", "web")
	requests, failures := load.finish()
	if !strings.Contains(out, "Restarted example: 3 jobs") {
		t.Errorf("flynn restart web:\n%s", out)
	}
	after := u.webJobIDs(dir)
	for id := range after {
		if before[id] {
			t.Errorf("job %s survived the restart", id)
		}
	}
	if len(after) != 3 {
		t.Errorf("%d web jobs up after the restart, want 3", len(after))
	}
	t.Logf("restart: %d requests, %d failed", requests, len(failures))
	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed during the restart, first: %s", len(failures), requests, failures[0])
	}
	if _, err := u.run(dir, filepath.Join(u.bin, "flynn"), "restart", "wroker"); err == nil {
		t.Error("restart of a type the app does not have succeeded")
	}

	// An old Flynn's TOML config gets a one-line explanation.
	old := filepath.Join(t.TempDir(), "flynnrc")
	if err := os.WriteFile(old, []byte("[[cluster]]\nName = \"default\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := u.flynnWith(dir, []string{"FLYNNRC=" + old}, "apps"); err == nil || !strings.Contains(out, "old Flynn (TOML) config") {
		t.Errorf("flynn with a TOML config: %v\n%s", err, out)
	}
}

// releasePhaseAndAppJSON: a Procfile release command runs before each
// deploy, and a failing one stops it with the old release serving;
// app.json's env and postdeploy apply at the first deploy.
func releasePhaseAndAppJSON(t *testing.T, u *user) {
	dir := u.appAs("nodejs", "release-phase")
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("Procfile", "web: node server.js\nrelease: node -e \"console.log('migrated ' + process.env.MODE)\"\n")
	write("app.json", `{"name": "release-phase", "env": {"MODE": "demo", "SESSION_SECRET": {"generator": "secret"}},
 "scripts": {"postdeploy": "echo postdeploy ran"}, "addons": ["heroku-postgresql"]}`)
	u.mustRun(dir, "git", "add", "-A")
	u.mustRun(dir, "git", "commit", "-q", "-m", "release phase")
	u.flynn(dir, "create", "sample-release")
	out, _ := u.push(dir)
	for _, want := range []string{"Running release command", "migrated demo", "postdeploy ran", "ignoring: addons"} {
		if !strings.Contains(out, want) {
			t.Errorf("first push output lacks %q:\n%s", want, out)
		}
	}
	if got := strings.TrimSpace(u.flynn(dir, "env", "get", "SESSION_SECRET")); len(got) != 64 {
		t.Errorf("app.json's generated SESSION_SECRET is %q", got)
	}
	domain := "sample-release." + u.domain
	poll.Until(t, 30*time.Second, "sample-release serves", func() bool {
		status, _, err := u.get(domain)
		return err == nil && status == 200
	})
	serving := u.currentRelease(dir)

	write("Procfile", "web: node server.js\nrelease: node -e \"console.error('migration failed'); process.exit(3)\"\n")
	u.mustRun(dir, "git", "commit", "-q", "-am", "a failing release command")
	out, err := u.run(dir, "git", "push", "flynn", "main")
	if err == nil || !strings.Contains(out, "migration failed") || !strings.Contains(out, "Release command failed") {
		t.Fatalf("push with a failing release command: %v\n%s", err, out)
	}
	if strings.Contains(out, "postdeploy ran") {
		t.Errorf("postdeploy ran again on a later push:\n%s", out)
	}
	if got := u.currentRelease(dir); got != serving {
		t.Errorf("a failed release command changed the release: %s → %s", serving, got)
	}
	if status, _, err := u.get(domain); err != nil || status != 200 {
		t.Errorf("after the failed release command the app answers %d, %v", status, err)
	}
	u.flynn(dir, "delete", "--yes")
}

// imageDeploy: an image built here with docker build is pushed with
// `flynn docker push --tcp` and reached through a TCP route.
func imageDeploy(t *testing.T, u *user) {
	image := "flynn-walk/image-tcp:latest"
	u.mustRun(repoRoot(), "docker", "build", "-q", "-t", image, "--build-arg", "STACK=flynn/stack:latest", "test/apps/image-tcp")
	t.Cleanup(func() { _, _ = u.run(u.home, "docker", "rmi", "-f", image) })
	dir := t.TempDir()
	u.flynn(dir, "create", "--no-remote", "--no-route", "sample-image")
	t.Cleanup(func() { _, _ = u.run(u.home, filepath.Join(u.bin, "flynn"), "-a", "sample-image", "delete", "--yes") })
	if out := u.flynn(dir, "-a", "sample-image", "docker", "push", "--tcp", image); !strings.Contains(out, "Deployed") {
		t.Logf("docker push:\n%s", out)
	}
	out := u.flynn(dir, "-a", "sample-image", "route", "add", "tcp", "--service", "sample-image-web")
	m := regexp.MustCompile(`:(\d+) \(tcp\)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("route add tcp printed no port:\n%s", out)
	}
	addr := net.JoinHostPort(strings.Split(u.router, ":")[0], m[1])
	poll.UntilNil(t, 60*time.Second, "the image answers through its TCP route", func() error {
		conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := fmt.Fprintf(conn, "ping\n"); err != nil {
			return err
		}
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			return err
		}
		if line != "image-tcp: ping\n" {
			return fmt.Errorf("answered %q", line)
		}
		return nil
	})
	// An image that is not there is one clear line.
	if out, err := u.run(dir, filepath.Join(u.bin, "flynn"), "-a", "sample-image", "docker", "push", "flynn-walk/missing:1"); err == nil ||
		!strings.Contains(out, "is not in your Docker engine") {
		t.Errorf("docker push of a missing image: %v\n%s", err, out)
	}
}

// clusterBuildEnv: an npm install reaches the registry the cluster's build
// env names, with nothing set on the app.
func clusterBuildEnv(t *testing.T, u *user) {
	reg := serveNPMRegistry(t)
	key := secrets(t)["the cluster key"]
	if key == "" {
		t.Fatal("no cluster key in /etc/flynn/host.env")
	}
	sys := []string{"FLYNN_CLUSTER_KEY=" + key}
	if out, err := u.flynnWith(u.home, nil, "cluster", "build-env", "set", "npm_config_registry="+reg.url); err == nil {
		t.Errorf("build-env set without --system succeeded:\n%s", out)
	}
	if out, err := u.flynnWith(u.home, sys, "--system", "cluster", "build-env", "set", "npm_config_registry="+reg.url); err != nil {
		t.Fatalf("build-env set: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		_, _ = u.flynnWith(u.home, sys, "--system", "cluster", "build-env", "unset", "npm_config_registry")
	})
	if out := u.flynn(u.home, "cluster", "build-env"); !strings.Contains(out, reg.url) {
		t.Errorf("flynn cluster build-env:\n%s", out)
	}
	dir := u.app("nodejs-dep")
	u.flynn(dir, "create", "sample-npm")
	t.Cleanup(func() { _, _ = u.run(u.home, filepath.Join(u.bin, "flynn"), "-a", "sample-npm", "delete", "--yes") })
	var env map[string]string
	if err := json.Unmarshal([]byte(u.flynn(dir, "env", "--json")), &env); err != nil || len(env) > 0 {
		t.Fatalf("the app has env of its own: %v (%v)", env, err)
	}
	u.push(dir)
	if reg.downloads.Load() == 0 {
		t.Error("the build did not download the package from the cluster's registry")
	}
	poll.Until(t, 30*time.Second, "sample-npm serves its dependency's greeting", func() bool {
		status, body, err := u.get("sample-npm." + u.domain)
		return err == nil && status == 200 && strings.Contains(body, "Hello from a registry package")
	})
}

// dockerfilePush: a repository with a Dockerfile and nothing a buildpack
// knows is built from it on the cluster, and served.
func dockerfilePush(t *testing.T, u *user) {
	dir := u.app("dockerfile")
	u.flynn(dir, "create", "sample-dockerfile")
	out, _ := u.push(dir)
	for _, want := range []string{"No buildpack matches; building the Dockerfile", "Building the Dockerfile on the cluster", "=====> http://sample-dockerfile." + u.domain + "/"} {
		if !strings.Contains(out, want) {
			t.Errorf("push output lacks %q:\n%s", want, out)
		}
	}
	poll.Until(t, 30*time.Second, "the Dockerfile app serves", func() bool {
		status, body, err := u.get("sample-dockerfile." + u.domain)
		return err == nil && status == 200 && strings.Contains(body, "Hello from Flynn (Dockerfile) built with RUN 42")
	})
	// A Dockerfile that does not build fails the push with Docker's word,
	// and the app keeps serving.
	serving := u.currentRelease(dir)
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM flynn/stack\nRUN exit 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	u.mustRun(dir, "git", "commit", "-q", "-am", "a failing RUN")
	out, err := u.run(dir, "git", "push", "flynn", "main")
	if err == nil || !strings.Contains(out, "Build failed") {
		t.Fatalf("push of a failing Dockerfile: %v\n%s", err, out)
	}
	if got := u.currentRelease(dir); got != serving {
		t.Errorf("a failed Dockerfile build changed the release: %s → %s", serving, got)
	}
	u.flynn(dir, "delete", "--yes")
}
