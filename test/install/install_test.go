// Package install tests script/install-flynn through its --dry-run: what it
// would install, enable and start on each supported distribution, how it
// refuses an unsupported one or a Go too old to build with, how it picks
// and changes the node's address, and that a dry run writes nothing.
//
// Each case runs the script in a copy of the part of the checkout it reads
// (itself, a go.mod with a fixed go line, and bin/ when the case has a
// build; or the layout of an unpacked `make dist`), with an environment of
// its own, the settings directory in a temporary one (FLYNN_CONF_DIR), and
// a PATH whose go and ip are fakes, so that its output is the same on every
// machine. The outputs are compared with testdata/<case>.golden;
// `go test ./test/install -update` rewrites them.
package install

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

const (
	// goMod is the checkout's go.mod: its go line is fixed so that the
	// goldens stay when the module's changes.
	goMod = "module github.com/openflynn/flynn\n\ngo 1.26.0\n"
	// goCurrent is what a Go new enough for goMod prints for `go version`.
	goCurrent = "go version go1.26.0 linux/amd64"
	// goOld is a Go too old to fetch a toolchain itself (before 1.21).
	goOld = "go version go1.19.8 linux/amd64"
	// defaultRoute is what the fake `ip -4 route get 1.1.1.1` prints.
	defaultRoute = "1.1.1.1 via 10.0.0.1 dev eth0 src 10.0.0.5 uid 0 \n    cache \n"
	// clusterKey is the key in a case's existing settings file.
	clusterKey = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"

	aptInstall = "would: apt-get install -y -qq --no-install-recommends " +
		"docker.io mmdebstrap debian-archive-keyring git ca-certificates curl iproute2 openssh-client make"
	enableUniverse = "would: add-apt-repository -y universe"
	supported      = "supported: Debian 12 (bookworm), Debian 13 (trixie), Ubuntu 22.04 (jammy), Ubuntu 24.04 (noble)"
)

// dryRun is one case: a run of install-flynn --dry-run and what it must
// print.
type dryRun struct {
	name      string   // the case, and its golden file testdata/<name>.golden
	osRelease string   // it reads testdata/<osRelease>.os-release
	goVersion string   // what the go on PATH prints for `go version`; "" for no go
	build     bool     // bin/ holds a build (flynn-host and images.json)
	dist      bool     // an unpacked `make dist`: a build, images.tar and no go.mod
	noRoute   bool     // the machine has no default route
	env       []string // environment over the defaults (EXTERNAL_IP=192.0.2.10)
	settings  string   // the settings file ($CONF/host.env) there already; "" for none
	wantExit  int
	want      []string // lines stdout holds
	notWant   []string // text stdout does not hold
	wantErr   []string // text stderr holds; stderr is empty when there is none
}

var cases = []dryRun{
	{
		name: "debian-12", osRelease: "debian-12", goVersion: goCurrent,
		want:    []string{"install-flynn: Debian 12 (bookworm)", "would: apt-get update -qq", aptInstall, "would: make -s build", "would: systemctl restart flynn-host"},
		notWant: []string{"universe"},
	},
	{
		name: "debian-13", osRelease: "debian-13", goVersion: goCurrent,
		want:    []string{"install-flynn: Debian 13 (trixie)", aptInstall, "would: make -s build", "would: systemctl restart flynn-host"},
		notWant: []string{"universe"},
	},
	{
		name: "ubuntu-22.04", osRelease: "ubuntu-22.04", goVersion: goCurrent,
		want: []string{"install-flynn: Ubuntu 22.04 (jammy)", "would: apt-get update -qq", enableUniverse, aptInstall, "would: systemctl restart flynn-host"},
	},
	{
		name: "ubuntu-24.04", osRelease: "ubuntu-24.04", goVersion: goCurrent,
		want: []string{"install-flynn: Ubuntu 24.04 (noble)", "would: apt-get update -qq", enableUniverse, aptInstall, "would: systemctl restart flynn-host"},
	},
	{
		name: "unsupported", osRelease: "fedora-40", goVersion: goCurrent, wantExit: 1,
		wantErr: []string{"install-flynn: this is Fedora Linux 40 (Server Edition) (ID=fedora, VERSION_ID=40 in ", supported, "FLYNN_ALLOW_UNSUPPORTED=1"},
		notWant: []string{"would:"},
	},
	{
		name: "unsupported-allowed", osRelease: "fedora-40", goVersion: goCurrent,
		env:     []string{"FLYNN_ALLOW_UNSUPPORTED=1"},
		wantErr: []string{"install-flynn: warning: this is Fedora Linux 40 (Server Edition)", supported},
		want:    []string{aptInstall},
		notWant: []string{"universe"},
	},
	{
		name: "go-too-old", osRelease: "debian-12", goVersion: goOld, wantExit: 1,
		wantErr: []string{"install-flynn: Go 1.19.8 found, this checkout needs Go >= 1.26.0: install it from https://go.dev/dl/ (tar -C /usr/local -xzf go1.26.0.linux-"},
		notWant: []string{"would: make", "flynn-host.service"},
	},
	{
		name: "go-too-old-with-build", osRelease: "debian-12", goVersion: goOld, build: true,
		want:    []string{"install-flynn: Go 1.19.8 found, this checkout needs Go >= 1.26.0: using the build in bin/", "would: bin/flynn-images --repo . --manifest bin/images.json"},
		notWant: []string{"would: make"},
	},
	{
		name: "go-toolchain", osRelease: "ubuntu-24.04", goVersion: "go version go1.22.2 linux/amd64",
		want: []string{"install-flynn: Go 1.22.2 found, older than go.mod's 1.26.0: GOTOOLCHAIN=auto fetches Go 1.26.0 through the module proxy", "would: make -s build"},
	},
	{
		name: "later-stacks", osRelease: "debian-12", goVersion: goCurrent,
		env:  []string{"FLYNN_LATER_STACKS=1"},
		want: []string{"would: make -s images IMAGES_FLAGS=--later-stacks"},
	},
	{
		name: "later-stacks-with-build", osRelease: "debian-12", goVersion: goOld, build: true,
		env:     []string{"FLYNN_LATER_STACKS=1"},
		want:    []string{"would: bin/flynn-images --repo . --manifest bin/images.json --later-stacks"},
		notWant: []string{"would: make"},
	},
	{
		name: "no-go", osRelease: "debian-13", wantExit: 1,
		wantErr: []string{"install-flynn: no Go found, this checkout needs Go >= 1.26.0: install it from https://go.dev/dl/"},
	},
	{
		name: "skip-build", osRelease: "debian-12", goVersion: goOld, build: true,
		env:     []string{"FLYNN_SKIP_BUILD=1"},
		want:    []string{"install-flynn: using the build in bin/"},
		notWant: []string{"would: make", "flynn-images"},
	},
	{
		name: "dist", osRelease: "ubuntu-24.04", goVersion: goCurrent, dist: true,
		want:    []string{"install-flynn: using the build in bin/ and the images in images.tar", "would: docker load -q -i images.tar"},
		notWant: []string{"would: make", "flynn-images"},
	},
	{
		name: "address-detected", osRelease: "ubuntu-22.04", goVersion: goCurrent,
		env:  []string{"EXTERNAL_IP="},
		want: []string{"install-flynn: EXTERNAL_IP=10.0.0.5 (the default route's source address; set EXTERNAL_IP to choose another)"},
	},
	{
		name: "address-no-route", osRelease: "debian-12", goVersion: goCurrent, noRoute: true,
		env:  []string{"EXTERNAL_IP="},
		want: []string{"install-flynn: EXTERNAL_IP=127.0.0.1 (no default route, so this machine alone; set EXTERNAL_IP to choose another)"},
	},
	{
		name: "node-2", osRelease: "debian-12", goVersion: goCurrent, build: true,
		env:     []string{"EXTERNAL_IP=", "FLYNN_NODE=2", "FLYNN_JOIN=127.0.0.1", "FLYNN_CLUSTER_KEY=" + clusterKey, "FLYNN_SKIP_BUILD=1"},
		want:    []string{"install-flynn: writing $CONF/host-2.env", "would: systemctl restart flynn-host-2"},
		notWant: []string{"10.0.0.5", "EXTERNAL_IP=127.0.0.1", clusterKey},
	},
	{
		name: "address-changed", osRelease: "debian-13", goVersion: goCurrent, settings: settings("127.0.0.1"),
		want: []string{
			"install-flynn: EXTERNAL_IP=192.0.2.10 replaces 127.0.0.1 in $CONF/host.env; flynn-host restarts with it",
			"would: sed -i 's/^EXTERNAL_IP=.*/EXTERNAL_IP=192.0.2.10/' $CONF/host.env",
			"would: systemctl restart flynn-host",
		},
		notWant: []string{"writing", clusterKey},
	},
	{
		name: "address-unchanged", osRelease: "debian-13", goVersion: goCurrent, settings: settings("192.0.2.10"),
		notWant: []string{"sed -i", "writing", clusterKey},
	},
	{
		name: "bad-address", osRelease: "debian-12", goVersion: goCurrent, wantExit: 1,
		env:     []string{"EXTERNAL_IP=10.0.0.1/evil"},
		wantErr: []string{"install-flynn: EXTERNAL_IP=10.0.0.1/evil: want an IP address"},
		notWant: []string{"would:"},
	},
}

// settings is a settings file as install-flynn writes it for node 1 at ip.
func settings(ip string) string {
	return "FLYNN_HOST_ID=local\nEXTERNAL_IP=" + ip + "\nFLYNN_CLUSTER_KEY=" + clusterKey +
		"\nFLYNN_STATE_DIR=/var/lib/flynn\nFLYNN_DOMAIN=flynn.test\nFLYNN_REPO=/src/flynn\nFLYNN_NODE=1\nFLYNN_JOIN=\n"
}

func TestDryRun(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile("../../script/install-flynn")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if c.goVersion == "" && baseGo() != "" {
				t.Skipf("%s is on the PATH the script runs with: no case without a Go here", baseGo())
			}
			stdout, stderr, code := c.run(t, bash, script)
			if code != c.wantExit {
				t.Errorf("exit status %d, want %d; stderr:\n%s", code, c.wantExit, stderr)
			}
			for _, w := range c.wantErr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q; got:\n%s", w, stderr)
				}
			}
			if len(c.wantErr) == 0 && stderr != "" {
				t.Errorf("stderr: got %q, want nothing", stderr)
			}
			var lines []string
			if stdout != "" {
				lines = strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
			}
			for _, l := range lines {
				if !strings.HasPrefix(l, "would: ") && !strings.HasPrefix(l, "install-flynn: ") {
					t.Errorf("stdout line %q is neither a would: line nor a message", l)
				}
			}
			for _, w := range c.want {
				if !slices.Contains(lines, w) {
					t.Errorf("stdout lacks the line\n%s\ngot:\n%s", w, stdout)
				}
			}
			for _, w := range c.notWant {
				if strings.Contains(stdout, w) {
					t.Errorf("stdout holds %q; got:\n%s", w, stdout)
				}
			}
			golden(t, c.name, stdout)
		})
	}
}

// run runs the case in a checkout of its own and returns its stdout (the
// checkout's path as $REPO, the settings directory's as $CONF), stderr and
// exit status. It fails the test if the run wrote anything.
func (c dryRun) run(t *testing.T, bash string, script []byte) (stdout, stderr string, code int) {
	t.Helper()
	tmp := t.TempDir()
	repo, conf, fakes := filepath.Join(tmp, "repo"), filepath.Join(tmp, "conf"), filepath.Join(tmp, "fakes")
	writeFile(t, filepath.Join(repo, "script", "install-flynn"), string(script), 0o755)
	if c.dist {
		writeFile(t, filepath.Join(repo, "images.tar"), "", 0o644)
	} else {
		writeFile(t, filepath.Join(repo, "go.mod"), goMod, 0o644)
	}
	if c.build || c.dist {
		writeFile(t, filepath.Join(repo, "bin", "flynn-host"), "#!/bin/sh\n", 0o755)
		writeFile(t, filepath.Join(repo, "bin", "images.json"), "{}\n", 0o644)
	}
	if c.settings != "" {
		writeFile(t, filepath.Join(conf, "host.env"), c.settings, 0o600)
	}
	route := "#!/bin/sh\ncat <<'EOF'\n" + defaultRoute + "EOF\n"
	if c.noRoute {
		route = "#!/bin/sh\necho 'RTNETLINK answers: Network is unreachable' >&2\nexit 2\n"
	}
	writeFile(t, filepath.Join(fakes, "ip"), route, 0o755)
	if c.goVersion != "" {
		// Only `go version` is expected: anything else would build or fetch.
		writeFile(t, filepath.Join(fakes, "go"), "#!/bin/sh\n[ \"$*\" = version ] || exit 3\necho '"+c.goVersion+"'\n", 0o755)
	}
	osRelease, err := filepath.Abs(filepath.Join("testdata", c.osRelease+".os-release"))
	if err != nil {
		t.Fatal(err)
	}

	if os.Geteuid() == 0 {
		openTo(t, tmp)
	}
	before := snapshot(t, tmp)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, filepath.Join(repo, "script", "install-flynn"), "--dry-run")
	cmd.Dir = tmp
	// Nothing from this machine's environment: only the case's.
	cmd.Env = append([]string{
		"PATH=" + fakes + ":" + basePath,
		"HOME=" + tmp,
		"LC_ALL=C",
		"FLYNN_OS_RELEASE=" + osRelease,
		"FLYNN_CONF_DIR=" + conf,
		"EXTERNAL_IP=192.0.2.10",
	}, c.env...)
	// Outside its own tree, a dry run cannot write even by mistake: as
	// root the test runs it as nobody, whom /etc, /run and /usr/local
	// refuse. (Comparing those paths before and after does not work: the
	// cluster tests running beside this one change them.)
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	after := snapshot(t, tmp)
	for _, p := range slices.Sorted(maps.Keys(after)) {
		if before[p] != after[p] {
			t.Errorf("%s: %s before the dry run, %s after", p, orNone(before[p]), orNone(after[p]))
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Errorf("%s: removed by the dry run", p)
		}
	}
	stdout = strings.NewReplacer(repo, "$REPO", conf, "$CONF").Replace(out.String())
	return stdout, errOut.String(), code
}

// nobody is the uid and gid the dry runs run as when the test is root.
const nobody = 65534

// openTo lets nobody read tmp's tree: the directories t.TempDir makes
// above it, and every file in it, the settings (0600) included.
func openTo(t *testing.T, tmp string) {
	t.Helper()
	for dir := tmp; dir != os.TempDir() && dir != "/"; dir = filepath.Dir(dir) {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	err := filepath.Walk(tmp, func(p string, fi fs.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		return os.Chmod(p, fi.Mode().Perm()|0o444)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// basePath is the rest of the PATH the script runs with, after the fakes.
const basePath = "/usr/sbin:/usr/bin:/sbin:/bin"

// baseGo is the go on basePath, or "".
func baseGo() string {
	for _, dir := range filepath.SplitList(basePath) {
		if p := filepath.Join(dir, "go"); fileExists(p) {
			return p
		}
	}
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// snapshot describes every file under dir (its mode, size and
// modification time), by path.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	describe := func(p string, fi fs.FileInfo) {
		files[p] = fmt.Sprintf("%v %d bytes, modified %v", fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
	}
	err := filepath.Walk(dir, func(p string, fi fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		describe(p, fi)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func orNone(s string) string {
	if s == "" {
		return "absent"
	}
	return s
}

// writeFile writes a fixture file, making its directory.
func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// golden compares got with testdata/name.golden, or rewrites that under
// -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./test/install -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
