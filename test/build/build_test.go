// Package build checks what `make build` makes: every command under cmd/
// into BIN, the ones that say their version (they link pkg/version)
// stamped with VERSION, and the others the same bytes whatever the
// version or commit, so that a commit that leaves a component alone
// leaves its image, and its deployment on an upgrade, alone.
package build

import (
	"bytes"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const versionPkg = "github.com/openflynn/flynn/pkg/version"

// commands lists the module's commands by binary name, and whether each
// links pkg/version, as the go tool sees them.
func commands(t *testing.T, root string) map[string]bool {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}", "./cmd/...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	cmds := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		cmds[path.Base(fields[0])] = slices.Contains(fields[1:], versionPkg)
	}
	return cmds
}

func makeBuild(t *testing.T, root, bin, version string) {
	t.Helper()
	cmd := exec.Command("make", "-s", "build", "BIN="+bin, "VERSION="+version)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build VERSION=%s: %v\n%s", version, err, out)
	}
}

func TestBuildStampsOnlyWhatSaysItsVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every command twice")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cmds := commands(t, root)
	if !cmds["flynn"] || !cmds["flynn-controller"] || cmds["discoverd"] {
		t.Fatalf("commands %v: want flynn and flynn-controller to link pkg/version, discoverd not", cmds)
	}
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	makeBuild(t, root, a, "v9.8.7-a")
	makeBuild(t, root, b, "v9.8.7-b")
	for name, versioned := range cmds {
		ba, err := os.ReadFile(filepath.Join(a, name))
		if err != nil {
			t.Errorf("make build did not make %s: %v", name, err)
			continue
		}
		bb, err := os.ReadFile(filepath.Join(b, name))
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case versioned && !bytes.Contains(ba, []byte("v9.8.7-a")):
			t.Errorf("%s links pkg/version but is not stamped with VERSION", name)
		case !versioned && !bytes.Equal(ba, bb):
			t.Errorf("%s does not say its version, yet two builds of one checkout with two VERSIONs differ", name)
		case !versioned:
			// Nor the commit: Go's VCS stamp would change it with each.
			info, err := exec.Command("go", "version", "-m", filepath.Join(a, name)).Output()
			if err != nil {
				t.Fatalf("go version -m %s: %v", name, err)
			}
			if bytes.Contains(info, []byte("vcs.revision")) {
				t.Errorf("%s carries the commit it was built from:\n%s", name, info)
			}
		}
	}
	// The stamp is what the binary says.
	out, err := exec.Command(filepath.Join(a, "flynn"), "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "flynn v9.8.7-a" {
		t.Errorf("flynn --version = %q, want flynn v9.8.7-a", got)
	}
}
