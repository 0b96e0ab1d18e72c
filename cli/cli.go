// Package cli is the flynn command-line tool: every command's logic, built
// on github.com/urfave/cli/v2. cmd/flynn only gathers the process's
// surroundings into an Env and calls Run.
//
// Conventions every command follows:
//   - The cluster is -c NAME, else $FLYNN_CLUSTER, else the default in
//     ~/.flynnrc (see cli/config).
//   - The app is -a APP; else the app of the git remote -r REMOTE names;
//     else $FLYNN_APP; else the app of the working directory's `flynn` git
//     remote.
//   - Lists print tables for people and JSON with --json for scripts.
//   - Any failure prints one line, "flynn: <message>", on stderr and exits
//     with status 1; `flynn run` exits with the job's status.
//   - Requests use the cluster's API key from ~/.flynnrc. A command that
//     changes a system app (the platform's own) or the cluster's own
//     settings (`cluster build-env set`) refuses unless --system is given,
//     which makes that call with the cluster key instead, read from
//     $FLYNN_CLUSTER_KEY or --cluster-key-file, never from an argument.
//   - A request that cannot reach the cluster says which cluster and
//     where, in one line; `flynn version` shows the cluster's version.
//   - Heroku's command names (logs, releases, config:set, ps:scale, …) are
//     the commands themselves under other names (aliases.go).
package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	urfave "github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/cli/config"
	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
	"github.com/openflynn/flynn/pkg/httpjson"
	"github.com/openflynn/flynn/pkg/terminal"
	"github.com/openflynn/flynn/pkg/tlspin"
)

// Env is everything the CLI takes from the process that runs it.
type Env struct {
	// ConfigPath is the configuration file, normally ~/.flynnrc.
	ConfigPath string
	// Home is the user's home directory (`key add` looks in Home/.ssh).
	Home string
	// Dir is the working directory, where git remotes are read and added.
	Dir string
	// Cluster is the cluster to use when -c is not given ($FLYNN_CLUSTER);
	// empty means the configured default.
	Cluster string
	// ClusterKey is the cluster key ($FLYNN_CLUSTER_KEY) that --system
	// uses when --cluster-key-file is not given.
	ClusterKey string
	// App is the app to use when neither -a nor -r is given ($FLYNN_APP);
	// empty means the app of the "flynn" git remote.
	App string
	// Browser is the command `flynn open` opens URLs with ($BROWSER);
	// empty means xdg-open (open on macOS) when it is on the PATH.
	Browser string
	// Version is what `flynn version` prints.
	Version string

	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Terminal is the terminal stdin is attached to, or nil when it is not
	// one; `flynn run` then gives the job a TTY.
	Terminal terminal.Terminal
	// Now is the clock for ages in tables; default time.Now.
	Now func() time.Time
	// Git is the git executable; default "git".
	Git string
}

// exitStatusError ends the CLI with a status and no message (a job's exit
// status from `flynn run`).
type exitStatusError struct{ status int }

func (e *exitStatusError) Error() string { return fmt.Sprintf("exit status %d", e.status) }

// Run runs the command line args (args[0] is the program name) and returns
// the process's exit status.
func Run(ctx context.Context, args []string, env *Env) int {
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.Git == "" {
		env.Git = "git"
	}
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	r := &runner{env: env}
	defer r.close()
	app := newApp(r)
	err := app.RunContext(ctx, interspersed(app, args))
	if err == nil {
		return 0
	}
	var exit *exitStatusError
	if errors.As(err, &exit) {
		return exit.status
	}
	if r.cluster != nil {
		err = unreachable(r.cluster, err)
	}
	fmt.Fprintf(env.Stderr, "flynn: %s\n", errorLine(err))
	return 1
}

// errorLine turns err into the one line the user sees: API errors by their
// message (and field), a pin mismatch with a hint, anything else on its
// first line.
func errorLine(err error) string {
	var mismatch *tlspin.MismatchError
	if errors.As(err, &mismatch) {
		return mismatch.Error() + " (is the pin right, and is this your cluster?)"
	}
	msg := err.Error()
	var apiErr *httpjson.Error
	if errors.As(err, &apiErr) {
		friendly := apiErr.Message
		if apiErr.Field != "" {
			friendly = apiErr.Field + ": " + friendly
		}
		if apiErr.Code == httpjson.CodeUnauthorized {
			friendly += " (check the cluster's API key, or with --system the cluster key)"
		}
		// Keep any context wrapped around the API error.
		msg = strings.TrimSuffix(msg, apiErr.Error()) + friendly
	}
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return msg
}

// runner holds what the commands of one Run share: the environment and,
// once a command needs it, the connection to the cluster.
type runner struct {
	env *Env
	// hc and api are set by connect.
	hc      *http.Client
	api     *client.Client
	cluster *config.Cluster
	stdin   *bufio.Reader
}

func (r *runner) close() {
	if r.hc != nil {
		r.hc.CloseIdleConnections()
	}
}

// connect returns the client of the selected cluster.
func (r *runner) connect(c *urfave.Context) (*client.Client, error) {
	if r.api != nil {
		return r.api, nil
	}
	f, err := config.Load(r.env.ConfigPath)
	if err != nil {
		return nil, err
	}
	name := lookupString(c, "cluster")
	if name == "" {
		name = r.env.Cluster
	}
	cl, err := f.Cluster(name)
	if err != nil {
		return nil, err
	}
	key := cl.Key
	if lookupBool(c, "system") {
		if key, err = r.clusterKey(c); err != nil {
			return nil, err
		}
	}
	hc, err := httpClient(cl)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cl.Name, err)
	}
	r.hc, r.cluster = hc, cl
	r.api = client.NewWithHTTPClient(cl.ControllerURL, key, hc)
	return r.api, nil
}

// clusterKey is the key --system uses: the content of --cluster-key-file,
// else $FLYNN_CLUSTER_KEY. It is never an argument, which `ps` would show.
func (r *runner) clusterKey(c *urfave.Context) (string, error) {
	if path := lookupString(c, "cluster-key-file"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("--cluster-key-file: %w", err)
		}
		key := strings.TrimSpace(string(b))
		if key == "" {
			return "", fmt.Errorf("--cluster-key-file %s is empty", path)
		}
		return key, nil
	}
	if r.env.ClusterKey != "" {
		return r.env.ClusterKey, nil
	}
	return "", errors.New("--system needs the cluster key: set $FLYNN_CLUSTER_KEY or give --cluster-key-file FILE")
}

// readLine reads one line of the user's input.
func (r *runner) readLine() (string, error) {
	if r.stdin == nil {
		r.stdin = bufio.NewReader(r.env.Stdin)
	}
	line, err := r.stdin.ReadString('\n')
	if err != nil && (line == "" || !errors.Is(err, io.EOF)) {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

// lookupString returns the value of flag name from the innermost command
// where it was given, so global flags like -a work before or after the
// command name.
func lookupString(c *urfave.Context, name string) string {
	for _, ctx := range c.Lineage() {
		if ctx.IsSet(name) {
			return ctx.String(name)
		}
	}
	return ""
}

// lookupBool is lookupString for boolean flags.
func lookupBool(c *urfave.Context, name string) bool {
	for _, ctx := range c.Lineage() {
		if ctx.IsSet(name) {
			return ctx.Bool(name)
		}
	}
	return false
}

// usageError reports a command used the wrong way, pointing at its help.
func usageError(c *urfave.Context, format string, args ...any) error {
	return fmt.Errorf("%s (see `%s --help`)", fmt.Sprintf(format, args...), c.Command.HelpName)
}

// changeApp is app for a command that changes the app: a system app is
// refused unless --system is given.
func (r *runner) changeApp(c *urfave.Context) (*client.Client, *controller.App, error) {
	api, app, err := r.app(c)
	if err != nil {
		return nil, nil, err
	}
	if err := refuseSystem(c, app); err != nil {
		return nil, nil, err
	}
	return api, app, nil
}

// refuseSystem refuses to change a system app without --system.
func refuseSystem(c *urfave.Context, app *controller.App) error {
	if app.System && !lookupBool(c, "system") {
		return fmt.Errorf("%s is a system app, part of the platform; to change it anyway, add --system (which uses the cluster key from $FLYNN_CLUSTER_KEY or --cluster-key-file)", app.Name)
	}
	return nil
}

// appAPI returns the name of the app a command works on (see appName)
// and the controller client, for a command whose requests name the app
// and need nothing else of it.
func (r *runner) appAPI(c *urfave.Context) (string, *client.Client, error) {
	name, err := r.appName(c)
	if err != nil {
		return "", nil, err
	}
	api, err := r.connect(c)
	if err != nil {
		return "", nil, err
	}
	return name, api, nil
}

// app returns the controller client and the app a command works on (see
// appName).
func (r *runner) app(c *urfave.Context) (*client.Client, *controller.App, error) {
	name, api, err := r.appAPI(c)
	if err != nil {
		return nil, nil, err
	}
	app, err := api.App(c.Context, name)
	if httpjson.IsNotFound(err) {
		return nil, nil, fmt.Errorf("no app named %s on cluster %s (`flynn apps` lists them)", name, r.cluster.Name)
	}
	if err != nil {
		return nil, nil, err
	}
	return api, app, nil
}
