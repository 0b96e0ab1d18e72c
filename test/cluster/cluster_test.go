// Package cluster tests a cluster brought up by `make cluster` (script/cluster
// up) on this machine: every component answers, the cluster survives a
// restart of flynn-host, and a bad manifest stops with the step and reason.
//
// It takes over the machine's ports 80, 443 and 2222 and /var/lib/flynn, so
// it runs in CI (CI=true) or when FLYNN_TEST_CLUSTER=1, as root. A cluster
// that was running before the test is left running; one the test started
// is taken down (script/cluster down) at the end.
package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/pkg/poll"
	"github.com/openflynn/flynn/pkg/testdeps"
	"github.com/openflynn/flynn/pkg/tlspin"
)

const domain = "flynn.test"

// line is what the cluster-add line carries, and the cluster key from the
// node's settings: the admin key (a person's API key) is for the
// controller, the cluster key for layer 0 and the blobstore.
type line struct{ pin, key, clusterKey string }

var clusterAddRE = regexp.MustCompile(`^flynn cluster add -p (\S+) -g 127\.0\.0\.1:2222 --git-host-key 'ssh-ed25519 \S+' --controller-addr 127\.0\.0\.1:443 default ` + regexp.QuoteMeta(domain) + ` - <<<(\S+)$`)

// clusterAdd is the running cluster's cluster-add line (bin/cluster-add,
// which bootstrap writes), with the certificate pin and the API key it
// carries; it fails t when the line is missing or not what bootstrap
// writes.
type clusterAdd struct{ line, pin, key string }

func readClusterAdd(t *testing.T, repo string) clusterAdd {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repo, "bin/cluster-add"))
	if err != nil {
		t.Fatalf("make cluster wrote no bin/cluster-add: %v", err)
	}
	line := strings.TrimSpace(string(data))
	m := clusterAddRE.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("bin/cluster-add = %q, want `flynn cluster add -p PIN -g 127.0.0.1:2222 --git-host-key 'HOSTKEY' --controller-addr 127.0.0.1:443 default %s - <<<KEY`", data, domain)
	}
	return clusterAdd{line: line, pin: m[1], key: m[2]}
}

// clusterRepo skips a test that brings a cluster up unless in CI or with
// FLYNN_TEST_CLUSTER=1, checks what it needs, and returns the repository's
// root.
func clusterRepo(t *testing.T) string {
	t.Helper()
	if !testdeps.InCI() && os.Getenv("FLYNN_TEST_CLUSTER") == "" {
		t.Skip("takes over ports 80/443/2222 of 127.0.0.1-3 and /var/lib/flynn: runs in CI or with FLYNN_TEST_CLUSTER=1")
	}
	if os.Geteuid() != 0 {
		testdeps.Missing(t, "root (make cluster installs packages and daemons)", fmt.Errorf("euid %d", os.Geteuid()))
	}
	testdeps.LookPath(t, "docker")
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

func TestCluster(t *testing.T) {
	repo := clusterRepo(t)
	_, statErr := os.Stat("/var/lib/flynn/cluster-add")
	wasRunning := statErr == nil
	if wasRunning && testdeps.InCI() {
		// CI measures a bring-up from nothing; a cluster left on the
		// machine's disk (of one node or several) goes first. Coming back
		// from such state is TestMultiNode's power cut.
		script(t, repo, 5*time.Minute, "script/cluster", "down")
		wasRunning = false
	}

	start := time.Now()
	out := script(t, repo, 25*time.Minute, "script/cluster", "up")
	total := time.Since(start)
	if !wasRunning {
		downAtEnd(t, repo)
	}
	if m := regexp.MustCompile(`bootstrap took (\S+)`).FindStringSubmatch(out); m != nil {
		d, _ := time.ParseDuration(m[1])
		// The benchmark: bootstrap with warm images against its 10 s goal.
		fmt.Printf("BENCH bootstrap %s (goal 10s, %.2fx of goal); make cluster %s\n", d, d.Seconds()/10, total.Round(time.Second))
	}
	ca := readClusterAdd(t, repo)
	cl := line{pin: ca.pin, key: ca.key, clusterKey: clusterKey(t)}
	if cl.key == cl.clusterKey {
		t.Fatal("the cluster-add line carries the cluster key; it must carry a person's API key")
	}

	checkComponents(t, cl)
	// Every formation's jobs run (bootstrap does not wait for the last
	// ones it deploys) before they are counted.
	want := formationJobs(t, cl.key)
	eventually(t, "every formation's jobs running", func() error {
		if got := appJobs(t, cl.clusterKey); got != want {
			return fmt.Errorf("%d app jobs, want %d", got, want)
		}
		return nil
	})
	jobsBefore := want

	t.Run("flynn-host restart", func(t *testing.T) {
		restartHost(t, repo)
		checkComponents(t, cl)
		// Nothing was started twice: the restarted daemon re-adopted the
		// jobs and the scheduler counted them.
		if got := appJobs(t, cl.clusterKey); got != jobsBefore {
			t.Errorf("%d app jobs after the restart, %d before", got, jobsBefore)
		}
	})

	t.Run("machine restart", func(t *testing.T) {
		// The machine goes down with its containers: flynn-host stops and
		// so does every container it ran. When flynn-host starts again it
		// starts the persistent components (discoverd, postgres, the
		// controller, the scheduler), and the scheduler the rest.
		start := time.Now()
		stopHost(t)
		out, err := exec.Command("docker", "ps", "-q", "--filter", "label=flynn.host-id="+hostID(t)).Output()
		if err != nil {
			t.Fatalf("docker ps: %v", err)
		}
		if ids := strings.Fields(string(out)); len(ids) > 0 {
			if b, err := exec.Command("docker", append([]string{"stop", "-t", "5"}, ids...)...).CombinedOutput(); err != nil {
				t.Fatalf("docker stop: %v\n%s", err, b)
			}
		}
		startHost(t, repo)
		checkComponents(t, cl)
		eventually(t, "every component running again", func() error {
			if got := appJobs(t, cl.clusterKey); got != jobsBefore {
				return fmt.Errorf("%d app jobs, want %d", got, jobsBefore)
			}
			return nil
		})
		fmt.Printf("BENCH cluster back after a machine restart in %s\n", time.Since(start).Round(time.Millisecond))
	})

	t.Run("bootstrap again changes nothing", func(t *testing.T) {
		cmd := exec.Command(filepath.Join(repo, "bin/flynn-host"), "bootstrap", "--images", "bin/images.json", "bootstrap/manifest.json")
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "FLYNN_CLUSTER_KEY="+cl.clusterKey)
		b, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(b), "bootstrapped already") {
			t.Errorf("second bootstrap: err %v, output:\n%s", err, b)
		}
		if got := appJobs(t, cl.clusterKey); got != jobsBefore {
			t.Errorf("%d app jobs after a second bootstrap, %d before", got, jobsBefore)
		}
	})

	t.Run("bad manifest", func(t *testing.T) {
		raw, err := os.ReadFile(filepath.Join(repo, "bootstrap/manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		bad := bytes.Replace(raw, []byte(`"image": "postgres",`), []byte(`"image": "postgres", "imgae": "x",`), 1)
		path := filepath.Join(t.TempDir(), "bad.json")
		if err := os.WriteFile(path, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(filepath.Join(repo, "bin/flynn-host"), "bootstrap", "--images", "bin/images.json", path)
		cmd.Dir = repo
		b, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(b), `step postgres (run-app): json: unknown field "imgae"`) {
			t.Errorf("bad manifest: err %v, want the step id and reason; output:\n%s", err, b)
		}
	})
}

// script runs a repository script, failing the test with its output.
func script(t *testing.T, repo string, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	return scriptEnv(t, repo, timeout, nil, name, args...)
}

// scriptEnv is script with env added to the environment.
func scriptEnv(t *testing.T, repo string, timeout time.Duration, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(repo, name), args...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), env...)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, b)
	}
	t.Logf("%s %s:\n%s", name, strings.Join(args, " "), lastLines(string(b), 30))
	return string(b)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// eventually polls check until it passes or a minute is up.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	if err := poll.Wait(t.Context(), time.Minute, check); err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

func checkComponents(t *testing.T, cl line) {
	t.Helper()
	// The controller, through the router's HTTPS listener, pinned.
	ctrl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: tlspin.Config(cl.pin, "controller."+domain),
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:443")
		},
	}}
	eventually(t, "controller without the key", func() error {
		return expectStatus(ctrl, "https://controller."+domain+"/apps", "", http.StatusUnauthorized, nil)
	})
	eventually(t, "controller with the key", func() error {
		var apps []struct{ Name string }
		if err := expectStatus(ctrl, "https://controller."+domain+"/apps", cl.key, http.StatusOK, &apps); err != nil {
			return err
		}
		have := map[string]bool{}
		for _, a := range apps {
			have[a.Name] = true
		}
		for _, n := range []string{"discoverd", "postgres", "controller", "scheduler", "blobstore", "router", "gitreceive"} {
			if !have[n] {
				return fmt.Errorf("app %s missing from %v", n, apps)
			}
		}
		return nil
	})
	// The router: an unknown host is a 404.
	eventually(t, "router", func() error {
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
		req.Host = "no-such-app." + domain
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			return fmt.Errorf("status %s, want 404", resp.Status)
		}
		return nil
	})
	// gitreceive's SSH banner, through the router's TCP route.
	eventually(t, "gitreceive", func() error {
		conn, err := net.DialTimeout("tcp", "127.0.0.1:2222", 5*time.Second)
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		banner, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			return fmt.Errorf("read banner: %w", err)
		}
		if !strings.HasPrefix(banner, "SSH-2.0-") {
			return fmt.Errorf("banner %q", banner)
		}
		return nil
	})
	// The blobstore, found in discoverd: a blob written with the key reads back.
	eventually(t, "blobstore", func() error {
		addr, err := instance("blobstore", cl.clusterKey)
		if err != nil {
			return err
		}
		url := "http://" + addr + "/test/cluster-" + time.Now().Format("150405.000000")
		req, _ := http.NewRequest(http.MethodPut, url, strings.NewReader("hello"))
		req.SetBasicAuth("", cl.clusterKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("PUT: %s", resp.Status)
		}
		// Reads need the key too (or a signed URL): an app must not read
		// another app's slug.
		if resp, err := http.Get(url); err != nil || resp.StatusCode != http.StatusUnauthorized {
			if err == nil {
				resp.Body.Close()
				return fmt.Errorf("GET without the key: %s, want 401", resp.Status)
			}
			return err
		}
		get, _ := http.NewRequest(http.MethodGet, url, nil)
		get.SetBasicAuth("", cl.clusterKey)
		resp, err = http.DefaultClient.Do(get)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if string(body) != "hello" {
			return fmt.Errorf("GET: %s %q", resp.Status, body)
		}
		return nil
	})
}

func expectStatus(c *http.Client, url, key string, status int, out any) error {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if key != "" {
		req.SetBasicAuth("", key)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != status {
		return fmt.Errorf("GET %s: %s, want %d", url, resp.Status, status)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// clusterKey reads the cluster key install-flynn wrote into the node's
// settings.
func clusterKey(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/etc/flynn/host.env")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "FLYNN_CLUSTER_KEY="); ok && v != "" {
			return v
		}
	}
	t.Fatal("no FLYNN_CLUSTER_KEY in /etc/flynn/host.env")
	return ""
}

// instance returns the address of a discoverd service's first instance.
func instance(service, key string) (string, error) {
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:1111/services/"+service+"/instances", nil)
	req.SetBasicAuth("", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var insts []*discoverd.Instance
	if err := json.NewDecoder(resp.Body).Decode(&insts); err != nil {
		return "", err
	}
	if len(insts) == 0 {
		return "", fmt.Errorf("no %s instance in discoverd", service)
	}
	return insts[0].Addr, nil
}

// formationJobs is how many jobs the controller's formations ask for: on
// one node, one of each omni process.
func formationJobs(t *testing.T, key string) int {
	t.Helper()
	fs, err := controllerClient(key).AllFormations(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range fs {
		for _, c := range f.Processes {
			n += c
		}
	}
	return n
}

// appJobs counts the live jobs of apps on the host.
func appJobs(t *testing.T, key string) int {
	t.Helper()
	var n int
	eventually(t, "host jobs", func() error {
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:1113/host/jobs", nil)
		req.SetBasicAuth("", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var jobs []struct {
			State string `json:"state"`
			Job   struct {
				Metadata map[string]string `json:"metadata"`
			} `json:"job"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&jobs); err != nil {
			return err
		}
		n = 0
		for _, j := range jobs {
			if j.Job.Metadata["flynn.app-id"] != "" && (j.State == "up" || j.State == "starting") {
				n++
			}
		}
		return nil
	})
	return n
}

// restartHost restarts the flynn-host daemon the way it was started.
func restartHost(t *testing.T, repo string) {
	t.Helper()
	stopHost(t)
	startHost(t, repo)
}

// stopHost stops the flynn-host daemon and waits for it to exit; its jobs
// keep running.
func stopHost(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		if b, err := exec.Command("systemctl", "stop", "flynn-host").CombinedOutput(); err != nil {
			t.Fatalf("systemctl stop flynn-host: %v\n%s", err, b)
		}
		return
	}
	pid, err := os.ReadFile("/run/flynn-host.pid")
	if err != nil {
		t.Fatalf("flynn-host pid: %v", err)
	}
	p := strings.TrimSpace(string(pid))
	if b, err := exec.Command("kill", p).CombinedOutput(); err != nil {
		t.Fatalf("kill flynn-host: %v\n%s", err, b)
	}
	poll.Until(t, 30*time.Second, "flynn-host (pid "+p+") exited", func() bool {
		return exec.Command("kill", "-0", p).Run() != nil
	})
}

// startHost starts flynn-host the way install-flynn does (systemd or in the
// background).
func startHost(t *testing.T, repo string) {
	t.Helper()
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		if b, err := exec.Command("systemctl", "start", "flynn-host").CombinedOutput(); err != nil {
			t.Fatalf("systemctl start flynn-host: %v\n%s", err, b)
		}
		return
	}
	// install-flynn starts it again when it is not running; with the
	// build in bin/, at once, as a supervisor would: the jobs' discoverd
	// registrations, which flynn-host heartbeats, outlive a restart only
	// within their TTL (10 s), and checking every image first took more.
	scriptEnv(t, repo, 10*time.Minute, []string{"FLYNN_SKIP_BUILD=1"}, "script/install-flynn")
}

// hostID is the cluster host's id, from install-flynn's settings.
func hostID(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/etc/flynn/host.env")
	if err != nil {
		t.Fatalf("read host settings: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "FLYNN_HOST_ID="); ok {
			return strings.Trim(v, `"'`)
		}
	}
	return "local"
}
