package slugbuilder

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeBuildpack makes a buildpack of the given bin/ scripts in a temp dir
// and returns its directory.
func writeBuildpack(t *testing.T, scripts map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(dir, "bin", name), []byte("#!/usr/bin/env bash\nset -euo pipefail\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// bpDir is the line of a test buildpack's script that finds its directory,
// as Heroku's buildpacks do.
const bpDir = `bp_dir=$(cd "$(dirname "$0")/.." && pwd)` + "\n"

// TestBuildpackExports checks Heroku's multi-buildpack convention: what
// a buildpack's compile writes to its export file reaches the detect,
// compile and release of the buildpacks after it.
func TestBuildpackExports(t *testing.T) {
	first := writeBuildpack(t, map[string]string{
		"compile": bpDir + `mkdir -p "$1/.first/bin"
printf '#!/bin/sh\necho tool ran\n' > "$1/.first/bin/first-tool"
chmod +x "$1/.first/bin/first-tool"
cat > "$bp_dir/export" <<SH
export PATH="$1/.first/bin:\$PATH"
export FIRST_HOME="$1/.first"
export FIRST_NOTE='two
lines'
unset DROPPED
echo "the export file's own output stays out of the environment"
SH
`,
	})
	second := writeBuildpack(t, map[string]string{
		"detect":  `echo "Second sees FIRST_HOME=${FIRST_HOME:-}"`,
		"compile": `{ echo "FIRST_HOME=${FIRST_HOME:-}"; echo "DROPPED=${DROPPED:-unset}"; first-tool; printf '%s' "$FIRST_NOTE" | wc -l; } > "$1/second.txt"`,
		"release": `printf -- '---\ndefault_process_types:\n  web: "%s"\n' "$FIRST_HOME"`,
	})
	var out bytes.Buffer
	cfg := testConfig(t, &out)
	cfg.Env = append(cfg.Env, "DROPPED=here")
	writeApp(t, cfg.BuildDir, map[string]string{".buildpacks": first + "\n" + second + "\n"})
	res, err := Build(t.Context(), cfg, discard())
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, out.String())
	}
	home := filepath.Join(cfg.BuildDir, ".first")
	if got, want := res.Buildpacks[1], "Second sees FIRST_HOME="+home; got != want {
		t.Errorf("second buildpack's name = %q, want %q (its detect sees the export)", got, want)
	}
	if got, want := readFile(t, filepath.Join(cfg.BuildDir, "second.txt")), "FIRST_HOME="+home+"\nDROPPED=unset\ntool ran\n1\n"; got != want {
		t.Errorf("second compile saw %q, want %q", got, want)
	}
	if got := res.ProcessTypes["web"]; got != home {
		t.Errorf("second release: web = %q, want %q", got, home)
	}
	for _, line := range []string{
		"the export file's own output stays out of the environment\n",
		"       " + filepath.Base(first) + " exports DROPPED, FIRST_HOME, FIRST_NOTE, PATH to the buildpacks after it\n",
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}
}

func TestBuildpackExportFails(t *testing.T) {
	tests := []struct {
		name, export string
	}{
		{"syntax error", "export A=1\nif then\n"},
		{"failing last command", "export A=1\nfalse\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bp := writeBuildpack(t, map[string]string{
				"detect":  "echo Exporter",
				"compile": bpDir + "cat > \"$bp_dir/export\" <<'SH'\n" + tt.export + "SH\n",
			})
			next := writeBuildpack(t, map[string]string{"compile": `touch "$1/next-ran"`})
			var out bytes.Buffer
			cfg := testConfig(t, &out)
			writeApp(t, cfg.BuildDir, map[string]string{".buildpacks": bp + "\n" + next + "\n"})
			_, err := Build(t.Context(), cfg, discard())
			if err == nil || !strings.HasPrefix(err.Error(), "Exporter buildpack: its export file") {
				t.Fatalf("err = %v, want one naming the Exporter buildpack's export file\n%s", err, out.String())
			}
			if _, err := os.Stat(filepath.Join(cfg.BuildDir, "next-ran")); err == nil {
				t.Error("the next buildpack ran")
			}
		})
	}
}

func TestSourceExportWithoutFile(t *testing.T) {
	var out bytes.Buffer
	cfg := testConfig(t, &out).withDefaults()
	env := []string{"A=1"}
	got, err := buildpack{Name: "x", Dir: t.TempDir()}.sourceExport(t.Context(), cfg, env)
	if err != nil || len(got) != 1 || got[0] != "A=1" {
		t.Errorf("sourceExport = %q, %v; want env unchanged", got, err)
	}
}
