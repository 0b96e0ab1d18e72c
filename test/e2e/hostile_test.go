//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/pkg/poll"
)

// hostileGet asks the hostile app for path through the router.
func (u *user) hostileGet(domain, path string, timeout time.Duration) (int, []byte, error) {
	req, _ := http.NewRequest("GET", "http://"+u.router+path, nil)
	req.Host = domain
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// secrets are the keys no process's arguments may show: the cluster key
// (which is also the controller key) and the admin API key the cluster-add
// line carries.
func secrets(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	if b, err := os.ReadFile("/etc/flynn/host.env"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "FLYNN_CLUSTER_KEY="); ok && v != "" {
				out["the cluster key"] = v
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(repoRoot(), "bin", "cluster-add")); err == nil {
		if _, key, ok := strings.Cut(strings.TrimSpace(string(b)), "<<<"); ok && key != "" {
			out["the admin API key"] = key
		}
	}
	if len(out) == 0 {
		t.Fatal("found no key to look for (no /etc/flynn/host.env, no bin/cluster-add)")
	}
	return out
}

// psHas reports which secrets the arguments of any process on the machine
// show.
func psHas(t *testing.T, keys map[string]string) []string {
	t.Helper()
	out, err := exec.Command("ps", "-eww", "-o", "args=").Output()
	if err != nil {
		t.Fatalf("ps: %v", err)
	}
	var found []string
	for what, key := range keys {
		if strings.Contains(string(out), key) {
			found = append(found, what)
		}
	}
	return found
}

// flynnHostRSS is the flynn-host daemon's resident memory in KiB.
func flynnHostRSS(t *testing.T) int {
	t.Helper()
	out, err := exec.Command("pgrep", "-f", "flynn-host daemon").Output()
	if err != nil {
		t.Fatalf("find flynn-host: %v", err)
	}
	pid := strings.Fields(string(out))[0]
	f, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.Fields(v)[0])
			return kb
		}
	}
	t.Fatal("no VmRSS for flynn-host")
	return 0
}

// platformPorts lists the ports the platform's components listen on at
// node 1, as discoverd knows them: "controller=55001,blobstore=55003,…".
func platformPorts(t *testing.T, clusterKey string) string {
	t.Helper()
	var out []string
	for _, service := range []string{"controller", "blobstore", "postgres", "gitreceive", "router-http", "flynn-scheduler"} {
		req, _ := http.NewRequest("GET", "http://127.0.0.1:1111/services/"+service+"/instances", nil)
		req.SetBasicAuth("", clusterKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var insts []struct {
			Addr string `json:"addr"`
		}
		err = json.NewDecoder(resp.Body).Decode(&insts)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s instances: %v", service, err)
		}
		for _, inst := range insts {
			if host, port, err := net.SplitHostPort(inst.Addr); err == nil && host == "127.0.0.1" && port != "1" {
				out = append(out, service+"="+port)
			}
		}
	}
	if len(out) < 4 {
		t.Fatalf("found only %v of the platform's ports in discoverd", out)
	}
	return strings.Join(out, ",")
}

// TestHostileApp deploys an app that attacks the platform from inside its
// job, and checks that every attempt fails or is contained while another
// app serves without a failed request, and that the cluster still deploys
// afterwards. Meanwhile no process's arguments show a key.
func TestHostileApp(t *testing.T) {
	u := newUser(t)
	u.addCluster()
	names := []string{"hostile", "bystander", "bomb"}
	for _, name := range names {
		_, _ = u.run(u.home, filepath.Join(u.bin, "flynn"), "-a", name, "delete", "--yes")
	}
	t.Cleanup(func() {
		for _, name := range names {
			_, _ = u.run(u.home, filepath.Join(u.bin, "flynn"), "-a", name, "delete", "--yes")
		}
	})
	u.flynn(u.home, "key", "add")
	keys := secrets(t)

	// A bystander app serves through the attacks.
	by := u.app("nodejs")
	u.flynn(by, "create", "bystander")
	u.push(by)
	byDomain := "bystander." + u.domain
	poll.Until(t, 30*time.Second, "the bystander serves", func() bool {
		status, _, err := u.get(byDomain)
		return err == nil && status == 200
	})
	load := u.startLoad(byDomain, 2)

	// The hostile app, told where the platform's components listen on its
	// node (their ports come from the node's range).
	dir := u.app("hostile")
	u.flynn(dir, "create", "hostile")
	u.flynn(dir, "env", "set", "PLATFORM_PORTS="+platformPorts(t, keys["the cluster key"]))
	u.push(dir)
	domain := "hostile." + u.domain
	poll.Until(t, 30*time.Second, "the hostile app serves", func() bool {
		status, _, err := u.hostileGet(domain, "/", 5*time.Second)
		return err == nil && status == 200
	})

	t.Run("network, keys, root and the node's files", func(t *testing.T) {
		status, body, err := u.hostileGet(domain, "/attack", 5*time.Minute)
		if err != nil || status != 200 {
			t.Fatalf("GET /attack: %d %v %s", status, err, body)
		}
		var results map[string]struct {
			Blocked bool   `json:"blocked"`
			Detail  string `json:"detail"`
		}
		if err := json.Unmarshal(body, &results); err != nil {
			t.Fatalf("attack results: %v\n%s", err, body)
		}
		if len(results) < 20 {
			t.Fatalf("only %d attempts reported: %s", len(results), body)
		}
		for name, r := range results {
			if !r.Blocked {
				t.Errorf("not blocked: %s (%s)", name, r.Detail)
			}
		}
		t.Logf("%d attempts, every one blocked", len(results))
	})

	t.Run("fork bomb", func(t *testing.T) {
		status, body, err := u.hostileGet(domain, "/forkbomb", 2*time.Minute)
		if err != nil || status != 200 {
			t.Fatalf("GET /forkbomb: %d %v %s", status, err, body)
		}
		var r struct {
			Forked int    `json:"forked"`
			Error  string `json:"error"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		if r.Error == "" || r.Forked > 512 {
			t.Errorf("the fork bomb made %d processes (%q); want it stopped by the pids limit (512)", r.Forked, r.Error)
		}
		t.Logf("fork bomb stopped after %d processes: %s", r.Forked, r.Error)
	})

	t.Run("a 1 GiB line without a newline", func(t *testing.T) {
		before := flynnHostRSS(t)
		began := time.Now()
		status, body, err := u.hostileGet(domain, "/flood?mb=1024", 10*time.Minute)
		if err != nil || status != 200 {
			t.Fatalf("GET /flood: %d %v %s", status, err, body)
		}
		after := flynnHostRSS(t)
		t.Logf("1 GiB without a newline in %s; flynn-host RSS %d → %d MiB", time.Since(began).Round(time.Millisecond), before/1024, after/1024)
		if after-before > 256*1024 {
			t.Errorf("flynn-host grew by %d MiB while the app wrote one long line", (after-before)/1024)
		}
		// The log catches up with the flood: the line after it arrives.
		poll.UntilNil(t, 60*time.Second, "the line after the flood is in the log", func() error {
			out := u.flynn(dir, "log", "-n", "5")
			if strings.Contains(out, "flood done") {
				return nil
			}
			var ends []string // each line's start: the log's last lines are 16 KiB of x
			for _, l := range strings.Split(out, "\n") {
				ends = append(ends, l[:min(len(l), 80)])
			}
			return fmt.Errorf("the log ends with %q", ends)
		})
	})

	t.Run("a tar bomb through a build", func(t *testing.T) {
		bomb := u.app("procfile")
		// Three GiB of zeros: a few MiB through git, three GiB unpacked.
		u.mustRun(bomb, "truncate", "-s", "3G", "zeros.bin")
		u.mustRun(bomb, "git", "add", "zeros.bin")
		u.mustRun(bomb, "git", "commit", "-q", "-m", "bomb")
		u.flynn(bomb, "create", "bomb")
		began := time.Now()
		out, err := u.run(bomb, "git", "push", "flynn", "main")
		if err == nil || !strings.Contains(out, "refusing the pushed tree") {
			t.Fatalf("push of a tar bomb: err %v, output:\n%s", err, out)
		}
		t.Logf("the tar bomb was refused in %s", time.Since(began).Round(time.Millisecond))
	})

	t.Run("no key in any process's arguments", func(t *testing.T) {
		if found := psHas(t, keys); len(found) > 0 {
			t.Errorf("ps shows %s", strings.Join(found, " and "))
		}
	})

	// The platform still works: the bystander deploys, and no request of
	// its loop failed through all of it.
	u.flynn(by, "env", "set", "AFTER=attacks")
	requests, failures := load.finish()
	t.Logf("bystander: %d requests during the attacks and a deploy, %d failed", requests, len(failures))
	if len(failures) > 0 {
		t.Errorf("%d of %d bystander requests failed, first: %s", len(failures), requests, failures[0])
	}
	if status, _, err := u.hostileGet(domain, "/", 10*time.Second); err != nil || status != 200 {
		t.Errorf("after its attacks the hostile app answers %d, %v", status, err)
	}
}
