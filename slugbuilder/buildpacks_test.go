package slugbuilder

import (
	"bytes"
	"go/version"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openflynn/flynn/pkg/testdeps"
)

// These tests run the bundled buildpacks (../buildpacks) on this host, with
// fakes of the tools whose versions they check on PATH, the way slugbuilder
// runs them in the build image.

// compileRun is one run of a bundled buildpack's bin/compile.
type compileRun struct {
	app, cache string
	out        string
	err        error
}

// runCompile runs the bundled buildpack pack over an app of files, with
// env added to a PATH that has fakeBin first; cache is reused when set.
func runCompile(t *testing.T, pack, fakeBin, cache string, files map[string]string, env ...string) compileRun {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("..", "buildpacks", pack, "bin", "compile"))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	r := compileRun{app: filepath.Join(tmp, "app"), cache: cache}
	if r.cache == "" {
		r.cache = filepath.Join(tmp, "cache")
	}
	writeApp(t, r.app, files)
	for _, dir := range []string{r.cache, filepath.Join(tmp, "env")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.CommandContext(t.Context(), script, r.app, r.cache, filepath.Join(tmp, "env"))
	cmd.Dir = r.app
	path := os.Getenv("PATH")
	if fakeBin != "" {
		path = fakeBin + string(os.PathListSeparator) + path
	}
	cmd.Env = append([]string{"PATH=" + path, "HOME=" + tmp, "STACK=" + Stack}, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	r.err = cmd.Run()
	r.out = out.String()
	return r
}

// fakeTool writes an executable script named name into a new directory and
// returns the directory.
func fakeTool(t *testing.T, name, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/usr/bin/env bash\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestPythonVersion(t *testing.T) {
	bin := fakeTool(t, "python3", `echo "Python 3.11.2"`+"\n")
	tests := []struct {
		name    string
		files   map[string]string
		wantErr bool
		want    string
	}{
		{"nothing asked", nil, false, "-----> Using Python 3.11.2\n"},
		{"minor", map[string]string{".python-version": "3.11\n"}, false, "-----> Using Python 3.11.2 (requested 3.11 in .python-version)\n"},
		{"exact", map[string]string{".python-version": "3.11.2"}, false, "-----> Using Python 3.11.2 (requested 3.11.2 in .python-version)\n"},
		{"patch is a wish", map[string]string{".python-version": "# pinned\n\n3.11.9\n3.12\n"}, false, "-----> Using Python 3.11.2 (requested 3.11.9: the patch level is not selectable here)\n"},
		{"newer minor", map[string]string{".python-version": "3.14\n"}, true, " !     Python 3.14 is requested (.python-version) but this stack has Python 3.11 (flynn-bookworm); ask for 3.11 in .python-version, or build on a stack that has Python 3.14\n"},
		{"not a version", map[string]string{".python-version": "pypy3.10\n"}, true, ` !     .python-version asks for "pypy3.10", which is not a Python version: write one like 3.11 or 3.11.2` + "\n"},
		{"runtime.txt", map[string]string{"runtime.txt": "python-3.11.4\n"}, false, "-----> Using Python 3.11.2 (requested 3.11.4: the patch level is not selectable here)\n"},
		{"runtime.txt older", map[string]string{"runtime.txt": "python-3.9.18"}, true, " !     Python 3.9.18 is requested (runtime.txt) but this stack has Python 3.11 (flynn-bookworm); ask for python-3.11.2 in runtime.txt, or build on a stack that has Python 3.9\n"},
		{"runtime.txt without python-", map[string]string{"runtime.txt": "3.11"}, true, ` !     runtime.txt asks for "3.11", which is not a Python version: write one like python-3.11.2` + "\n"},
		{".python-version wins", map[string]string{".python-version": "3.11", "runtime.txt": "python-3.9.1"}, false, "(requested 3.11 in .python-version)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{"app.py": "print('hi')\n"}
			for k, v := range tt.files {
				files[k] = v
			}
			r := runCompile(t, "python", bin, "", files)
			if (r.err != nil) != tt.wantErr || !strings.Contains(r.out, tt.want) {
				t.Errorf("err = %v (want one: %v), output should contain %q:\n%s", r.err, tt.wantErr, tt.want, r.out)
			}
			if tt.wantErr && strings.Count(r.out, "\n") != 1 {
				t.Errorf("a failure should be one line:\n%s", r.out)
			}
		})
	}
}

// fakeGo stands in for go: the local toolchain is go1.26.8, the module
// proxy (any GOPROXY but off) has go1.27.3 only, and a fetched toolchain
// lands in the module cache as go puts it there. go build writes the
// toolchain it ran as into bin/m.
const fakeGo = `set -euo pipefail
local=go1.26.8
v=${GOTOOLCHAIN:-local}
[ "$v" = local ] && v=$local
dir=$GOMODCACHE/golang.org/toolchain@v0.0.1-$v.linux-amd64
if [ "$v" != "$local" ] && [ ! -d "$dir" ]; then
  if [ "${GOPROXY:-}" = off ] || [ "$v" != go1.27.3 ]; then
    echo "go: downloading $v (linux/amd64)" >&2
    echo "go: download $v for linux/amd64: toolchain not available" >&2
    exit 1
  fi
  echo "go: downloading $v (linux/amd64)" >&2
  mkdir -p "$dir/bin" "$GOMODCACHE/cache/download/golang.org/toolchain/@v"
  touch "$GOMODCACHE/cache/download/golang.org/toolchain/@v/v0.0.1-$v.linux-amd64.zip"
  chmod -R a-w "$dir"
fi
case "$1" in
env) echo "$v" ;;
version) echo "go version $v linux/amd64" ;;
list) echo example.com/m ;;
mod) ;;
build) mkdir -p bin && echo "$v" > bin/m ;;
esac
`

func TestGoToolchain(t *testing.T) {
	bin := fakeTool(t, "go", fakeGo)
	const proxy = "GOPROXY=https://proxy.example"
	tests := []struct {
		name      string
		gomod     string
		env       []string
		cached    string // a toolchain an earlier build fetched
		wantErr   bool
		want      string
		wantBuild string // the toolchain that built the app
	}{
		{"older go line", "go 1.22", []string{proxy}, "", false, "-----> Go 1.26.8\n", "go1.26.8"},
		{"same go line", "go 1.26.8", nil, "", false, "-----> Go 1.26.8\n", "go1.26.8"},
		{"language of the local release", "go 1.26", nil, "", false, "-----> Go 1.26.8\n", "go1.26.8"},
		{"older toolchain line", "go 1.22\n\ntoolchain go1.25.1", nil, "", false, "-----> Go 1.26.8\n", "go1.26.8"},
		{"no go line", "", nil, "", false, "-----> Go 1.26.8\n", "go1.26.8"},
		{"toolchain line from the proxy", "go 1.26\n\ntoolchain go1.27.3", []string{proxy}, "",
			false, "-----> Using Go go1.27.3 from the module proxy (go.mod asks for it; this stack has go1.26.8)\n", "go1.27.3"},
		{"go line with a patch level", "go 1.27.3", []string{proxy}, "", false, "-----> Using Go go1.27.3 from the module proxy", "go1.27.3"},
		{"go line later than toolchain line", "go 1.27.3\n\ntoolchain go1.26.9", []string{proxy}, "", false, "-----> Using Go go1.27.3 from the module proxy", "go1.27.3"},
		{"language version the proxy lacks", "go 1.27", []string{proxy}, "", true,
			" !     Go go1.27.0 is requested (go.mod's go line) but this stack has go1.26.8 (flynn-bookworm), and the module proxy (https://proxy.example) did not provide it: go: download go1.27.0 for linux/amd64: toolchain not available; add a line 'toolchain go1.27.N' to go.mod naming a release that the proxy has\n", ""},
		{"toolchain the proxy lacks", "go 1.26\n\ntoolchain go1.27.1", []string{"GOPROXY=https://me:secret@proxy.example"}, "", true,
			"(go.mod's toolchain line) but this stack has go1.26.8 (flynn-bookworm), and the module proxy (https://xxxxx@proxy.example) did not provide it: go: download go1.27.1 for linux/amd64: toolchain not available; name in a toolchain line a release that the proxy has\n", ""},
		{"no proxy", "go 1.27.3", nil, "", true,
			" !     Go go1.27.3 is requested (go.mod's go line) but this stack has go1.26.8 (flynn-bookworm); set GOPROXY to fetch it through the module proxy (flynn --system cluster build-env set GOPROXY=… for every app, flynn env set GOPROXY=… for this one), or lower go.mod's go and toolchain lines to 1.26.8\n", ""},
		{"proxy off", "go 1.27.3", []string{"GOPROXY=off"}, "", true, "set GOPROXY to fetch it", ""},
		{"cached without a proxy", "go 1.27.3", nil, "go1.27.3", false,
			"-----> Using Go go1.27.3 from the build cache (go.mod asks for it; this stack has go1.26.8)\n", "go1.27.3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache := t.TempDir()
			removableOnCleanup(t, cache)
			mod := filepath.Join(cache, "go", "pkg", "mod")
			cached := []string{"go1.27.2"} // stale: the build uses another
			if tt.cached != "" {
				cached = append(cached, tt.cached)
			}
			for _, v := range cached {
				dir := filepath.Join(mod, "golang.org", "toolchain@v0.0.1-"+v+".linux-amd64")
				if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
					t.Fatal(err)
				}
				os.Chmod(dir, 0o555) // as go leaves them
			}
			r := runCompile(t, "go", bin, cache, map[string]string{"go.mod": "module example.com/m\n\n" + tt.gomod + "\n", "main.go": "package main\n"}, tt.env...)
			if (r.err != nil) != tt.wantErr || !strings.Contains(r.out, tt.want) {
				t.Fatalf("err = %v (want one: %v), output should contain %q:\n%s", r.err, tt.wantErr, tt.want, r.out)
			}
			if tt.wantErr {
				if strings.Count(r.out, "\n") != 1 {
					t.Errorf("a failure should be one line:\n%s", r.out)
				}
				return
			}
			if got := readFile(t, filepath.Join(r.app, "bin", "m")); got != tt.wantBuild+"\n" {
				t.Errorf("built with %q, want %s", got, tt.wantBuild)
			}
			// The cache keeps the toolchain in use, unpacked, and no other.
			toolchains, _ := filepath.Glob(filepath.Join(mod, "golang.org", "toolchain@*"))
			var want []string
			if tt.wantBuild != "go1.26.8" {
				want = []string{filepath.Join(mod, "golang.org", "toolchain@v0.0.1-"+tt.wantBuild+".linux-amd64")}
			}
			if strings.Join(toolchains, ",") != strings.Join(want, ",") {
				t.Errorf("cached toolchains %q, want %q", toolchains, want)
			}
			if zips, _ := filepath.Glob(filepath.Join(mod, "cache", "download", "golang.org", "toolchain", "@v", "*.zip")); len(zips) > 0 {
				t.Errorf("the cache keeps the toolchain's zip too: %q", zips)
			}
		})
	}
}

// TestGoToolchainFromProxyIntegration builds a module whose go.mod asks for
// a newer Go than this host's through the real module proxy, twice with
// one cache: the first build fetches the toolchain, the second finds it in
// the cache.
func TestGoToolchainFromProxyIntegration(t *testing.T) {
	testdeps.Short(t)
	goBin := testdeps.LookPath(t, "go")
	const want = "go1.27.3"
	local, err := exec.Command(goBin, "env", "GOVERSION").Output()
	if err != nil {
		t.Fatal(err)
	}
	if v := strings.TrimSpace(string(local)); version.Compare(v, want) >= 0 {
		t.Skipf("this host's %s is not older than %s: the test has nothing to fetch", v, want)
	}
	proxy, err := exec.Command(goBin, "env", "GOPROXY").Output()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"go.mod":  "module example.com/hello\n\ngo 1.26\n\ntoolchain " + want + "\n",
		"main.go": "package main\n\nimport (\n\t\"fmt\"\n\t\"runtime\"\n)\n\nfunc main() { fmt.Println(runtime.Version()) }\n",
	}
	cache := t.TempDir()
	removableOnCleanup(t, cache)
	env := []string{"GOPROXY=" + strings.TrimSpace(string(proxy))}
	for build, wantStep := range []string{"from the module proxy", "from the build cache"} {
		r := runCompile(t, "go", "", cache, files, env...)
		if r.err != nil {
			t.Fatalf("build %d: %v\n%s", build+1, r.err, r.out)
		}
		if step := "-----> Using Go " + want + " " + wantStep; !strings.Contains(r.out, step) {
			t.Errorf("build %d: output lacks %q:\n%s", build+1, step, r.out)
		}
		out, err := exec.Command(filepath.Join(r.app, "bin", "hello")).Output()
		if err != nil || strings.TrimSpace(string(out)) != want {
			t.Errorf("build %d: the app says %q, %v; want %s", build+1, out, err, want)
		}
	}
}

// removableOnCleanup makes dir's directories writable when the test ends,
// so that TempDir can remove a module cache, read-only as go leaves it.
func removableOnCleanup(t *testing.T, dir string) {
	t.Cleanup(func() {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
	})
}
