package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/openflynn/flynn/pkg/testdeps"
)

func TestAppNames(t *testing.T) {
	h := newHarness(t)
	for _, name := range []string{"web", "api", "worker"} {
		h.app(name)
	}
	if out := h.ok("__apps"); out != "api\nweb\nworker\n" {
		t.Fatalf("__apps printed %q", out)
	}
	// Any failure: nothing at all, and success, for the shell.
	res := h.run("-c", "nope", "__apps")
	if res != (result{}) {
		t.Fatalf("__apps of an unknown cluster: %+v, want nothing", res)
	}
	useCluster(t, h, "down", closedURL(t))
	if res := h.run("__apps"); res != (result{}) {
		t.Fatalf("__apps of a cluster that is down: %+v, want nothing", res)
	}
}

// completionEnv makes this test binary the flynn command (execAsFlynn)
// of h's configuration, on the PATH of the shells that run the scripts,
// as they run it on a Tab.
func completionEnv(t *testing.T, h *harness) []string {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(bin, filepath.Join(dir, "flynn")); err != nil {
		t.Fatal(err)
	}
	// A race-enabled binary otherwise waits a second as it exits.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	return append(os.Environ(), execAsFlynn+"=1", "FLYNNRC="+h.env.ConfigPath, "GORACE="+gorace, "PATH="+dir+string(filepath.ListSeparator)+os.Getenv("PATH"))
}

// completionCases are command lines up to the word being completed, and
// the candidates a shell offers.
var completionCases = []struct {
	words []string
	want  []string
}{
	{[]string{"-a", ""}, []string{"example", "other"}},
	{[]string{"-a", "ex"}, []string{"example"}},
	{[]string{"info", "--app", "o"}, []string{"other"}},
	{[]string{"-c", "test", "-a", ""}, []string{"example", "other"}},
	{[]string{"-c", "nope", "-a", ""}, nil},
	{[]string{"resta"}, []string{"restart"}},
	{[]string{"rou"}, []string{"route"}}, // not the hidden "routes"
}

// TestBashCompletion runs the bash script in bash.
func TestBashCompletion(t *testing.T) {
	bash := testdeps.LookPath(t, "bash")
	h := newHarness(t)
	h.app("example")
	h.app("other")
	env := completionEnv(t, h)
	const script = `source <(flynn completion bash) || exit 1
COMP_WORDS=(flynn "$@")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
_flynn_complete
printf '%s\n' "${COMPREPLY[@]}"`
	for _, tt := range completionCases {
		cmd := exec.Command(bash, append([]string{"-c", script, "bash"}, tt.words...)...)
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("complete %q: %v", tt.words, err)
		}
		if got := strings.Fields(string(out)); !slices.Equal(got, tt.want) {
			t.Errorf("bash completes %q with %q, want %q", tt.words, got, tt.want)
		}
	}
}

// TestFishCompletion asks fish for its completions of each command line.
func TestFishCompletion(t *testing.T) {
	fish := testdeps.LookPath(t, "fish")
	h := newHarness(t)
	h.app("example")
	h.app("other")
	env := completionEnv(t, h)
	for _, tt := range completionCases {
		line := "flynn " + strings.Join(tt.words, " ")
		cmd := exec.Command(fish, "--no-config", "-c", "flynn completion fish | source; complete -C $argv[1]", line)
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("complete %q: %v", line, err)
		}
		if got := strings.Fields(string(out)); !slices.Equal(got, tt.want) {
			t.Errorf("fish completes %q with %q, want %q", line, got, tt.want)
		}
	}
}

// TestZshCompletionParses: zsh reads the script (running it takes zsh's
// line editor).
func TestZshCompletionParses(t *testing.T) {
	zsh := testdeps.LookPath(t, "zsh")
	cmd := exec.Command(zsh, "-f", "-c", "autoload -U compinit && compinit -u -D && source /dev/stdin && whence -w _flynn")
	cmd.Stdin = strings.NewReader(zshCompletion)
	if out, err := cmd.CombinedOutput(); err != nil || string(out) != "_flynn: function\n" {
		t.Fatalf("zsh: %v: %s", err, out)
	}
}

func TestCompletionScripts(t *testing.T) {
	h := &harness{t: t, env: Env{ConfigPath: t.TempDir() + "/.flynnrc"}}
	for shell, want := range map[string][]string{
		"bash": {"-a|--app)", `__apps 2>/dev/null`, "--generate-bash-completion", "complete -o default -F _flynn_complete flynn"},
		"zsh":  {"-a|--app)", `__apps 2>/dev/null`, "--generate-bash-completion", "compdef _flynn flynn"},
		"fish": {"contains -- $tokens[-1] -a --app", "$tokens[1] $cluster __apps 2>/dev/null", "complete -c flynn -f -n '__flynn_after_app' -a '(__flynn_apps)'", "complete -c flynn -f -n 'not __flynn_after_app' -a '(__flynn_candidates)'"},
	} {
		out := h.ok("completion", shell)
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("completion %s lacks %q:\n%s", shell, w, out)
			}
		}
	}
}
