package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"

	urfave "github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/cli/config"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/tlspin"
)

// TestHelpHasExamples checks that every command's --help shows an example.
func TestHelpHasExamples(t *testing.T) {
	h := &harness{t: t, env: Env{ConfigPath: t.TempDir() + "/.flynnrc"}}
	var walk func(path []string, cmds []*urfave.Command)
	walk = func(path []string, cmds []*urfave.Command) {
		for _, c := range cmds {
			p := append(append([]string(nil), path...), c.Name)
			out := h.ok(append(p, "--help")...)
			_, example, found := strings.Cut(out, "Example:\n")
			if line, _, _ := strings.Cut(example, "\n"); !found || !strings.Contains(line, "flynn ") {
				t.Errorf("flynn %s --help has no example:\n%s", strings.Join(p, " "), out)
			}
			walk(p, c.Subcommands)
		}
	}
	app := newApp(&runner{env: &Env{}})
	walk(nil, app.Commands)
	if out := h.ok("--help"); !strings.Contains(out, "Example:") {
		t.Errorf("flynn --help has no example:\n%s", out)
	}
}

func TestVersionAndCompletion(t *testing.T) {
	h := &harness{t: t, env: Env{ConfigPath: t.TempDir() + "/.flynnrc", Version: "v1.2.3"}}
	if out := h.ok("version"); out != "flynn v1.2.3\n" {
		t.Fatalf("version printed %q", out)
	}
	if out := h.ok("completion", "bash"); !strings.Contains(out, "complete -o default -F _flynn_complete flynn") {
		t.Fatalf("completion bash printed %q", out)
	}
	if out := h.ok("completion", "zsh"); !strings.Contains(out, "compdef _flynn flynn") {
		t.Fatalf("completion zsh printed %q", out)
	}
	if out := h.ok("completion", "fish"); !strings.Contains(out, "complete -c flynn -f") {
		t.Fatalf("completion fish printed %q", out)
	}
	h.fails("want bash, zsh or fish", "completion", "tcsh")
	// What the scripts ask for: the names that may follow. urfave/cli
	// reads os.Args to complete, so the test sets them as a shell would.
	saved := os.Args
	os.Args = []string{"flynn", "route", "--generate-bash-completion"}
	defer func() { os.Args = saved }()
	out := h.ok("route", "--generate-bash-completion")
	for _, want := range []string{"add\n", "list\n", "remove\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("route completion lacks %q:\n%s", want, out)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	h := &harness{t: t, env: Env{ConfigPath: t.TempDir() + "/.flynnrc"}}
	h.fails("flag provided but not defined: -bogus (see `flynn scale --help`)", "scale", "--bogus")
	h.fails("want NAME DOMAIN, and the key on stdin (-) or in --key-file (see `flynn cluster add --help`)", "cluster", "add", "x")
	h.fails("want the key on stdin (-) or in --key-file (see `flynn cluster add --help`)", "cluster", "add", "x", "x.test")
	h.fails("give the key once", "cluster", "add", "--key-file", "k", "x", "x.test", "key")
	h.fails("unknown limit \"disk\" (want memory, pids or cpu) (see `flynn limit set --help`)", "limit", "set", "web", "disk=1GiB")
	h.fails("no cluster configured", "apps")
}

func TestErrorLine(t *testing.T) {
	apiErr := &httpjson.Error{Code: httpjson.CodeNotFound, Message: "app not found"}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"api error", apiErr, "app not found"},
		{"api error with field", httpjson.ValidationError("name", "must match %s", "^[a-z]"), "name: must match ^[a-z]"},
		{"wrapped api error keeps context", fmt.Errorf("release v2 created but not deployed: %w", apiErr), "release v2 created but not deployed: app not found"},
		{"unauthorized hints at the key", &httpjson.Error{Code: httpjson.CodeUnauthorized, Message: "invalid key"}, "invalid key (check the cluster's API key, or with --system the cluster key)"},
		{"pin mismatch", fmt.Errorf("GET /apps: %w", &tlspin.MismatchError{Want: "a", Got: "b"}), "TLS pin mismatch: the server's certificate has pin b, want a (is the pin right, and is this your cluster?)"},
		{"first line only", errors.New("one\ntwo"), "one"},
		{"old config", fmt.Errorf("/home/me/.flynnrc is %w; move it aside", config.ErrOldFormat), "/home/me/.flynnrc is an old Flynn (TOML) config; move it aside"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errorLine(tt.err); got != tt.want {
				t.Fatalf("errorLine = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestUnreachable: a request that cannot reach the cluster says which
// cluster, where, and why, in one line; other errors stay as they are.
func TestUnreachable(t *testing.T) {
	cl := &config.Cluster{Name: "prod", ControllerURL: "https://controller.example.com"}
	via := &config.Cluster{Name: "dev", ControllerURL: "https://controller.dev.test", ControllerAddr: "10.0.0.1:443"}
	dial := func(err error) error {
		return fmt.Errorf("controller client: %w", &url.Error{Op: "Get", URL: cl.ControllerURL + "/apps", Err: &net.OpError{Op: "dial", Net: "tcp", Err: err}})
	}
	hint := " (is it up? `flynn cluster list` shows what is configured)"
	tests := []struct {
		name    string
		cluster *config.Cluster
		err     error
		want    string
	}{
		{"refused", cl, dial(os.NewSyscallError("connect", syscall.ECONNREFUSED)), "cannot reach cluster prod at https://controller.example.com: connection refused" + hint},
		{"no such host", cl, dial(&net.DNSError{Err: "no such host", Name: "controller.example.com", IsNotFound: true}), "cannot reach cluster prod at https://controller.example.com: no such host" + hint},
		{"timeout", cl, dial(os.ErrDeadlineExceeded), "cannot reach cluster prod at https://controller.example.com: timed out" + hint},
		{"dns failure", cl, dial(&net.DNSError{Err: "server misbehaving", Name: "controller.example.com"}), "cannot reach cluster prod at https://controller.example.com: cannot resolve controller.example.com: server misbehaving" + hint},
		{"via an address", via, dial(os.NewSyscallError("connect", syscall.ECONNREFUSED)), "cannot reach cluster dev at https://controller.dev.test (via 10.0.0.1:443): connection refused" + hint},
		{"interrupted: not the cluster's fault", cl, dial(context.Canceled), "controller client: Get \"https://controller.example.com/apps\": dial tcp: context canceled"},
		{"not a dial", cl, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, "read tcp: connection reset by peer"},
		{"api error", cl, &httpjson.Error{Code: httpjson.CodeNotFound, Message: "app not found"}, "app not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errorLine(unreachable(tt.cluster, tt.err)); got != tt.want {
				t.Fatalf("errorLine = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestFriendlyErrors: what the user sees of a cluster that is down, and of
// an old Flynn's ~/.flynnrc.
func TestFriendlyErrors(t *testing.T) {
	h := &harness{t: t, env: Env{ConfigPath: t.TempDir() + "/.flynnrc"}}
	down := closedURL(t)
	useCluster(t, h, "down", down)
	h.fails("flynn: cannot reach cluster down at "+down+": connection refused (is it up? `flynn cluster list` shows what is configured)\n", "apps")
	h.fails("flynn: cannot reach cluster down at "+down+": connection refused", "-a", "example", "info")

	if err := os.WriteFile(h.env.ConfigPath, []byte("[[cluster]]\n  Name = \"default\"\n  Key = \"x\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.fails("flynn: "+h.env.ConfigPath+" is an old Flynn (TOML) config; move it aside and add the cluster again with `flynn cluster add` (see `flynn cluster add --help`)\n", "apps")
}
