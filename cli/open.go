package cli

import (
	"fmt"
	"os/exec"
	"runtime"
	"strings"

	urfave "github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/controller"
)

func (r *runner) openCommand() *urfave.Command {
	return &urfave.Command{
		Name:      "open",
		Usage:     "open the app's web address in a browser",
		ArgsUsage: "[PATH]",
		Description: `Opens the app's URL (with PATH after it) in $BROWSER, else in xdg-open
(open on macOS), as Heroku's open does: the domain of the app's first HTTP
route (wildcard routes passed over), https:// when the route has a TLS
certificate and http:// otherwise. Without a terminal or a browser to run,
it prints the URL instead.

Example:
   flynn -a example open
   flynn -a example open /admin
   curl "$(flynn -a example open </dev/null)"/health`,
		Flags:  []urfave.Flag{appFlag()},
		Action: r.open,
	}
}

func (r *runner) open(c *urfave.Context) error {
	if c.NArg() > 1 {
		return usageError(c, "want at most one PATH")
	}
	name, api, err := r.appAPI(c)
	if err != nil {
		return err
	}
	routes, err := api.AppRoutes(c.Context, name)
	if err != nil {
		return err
	}
	url := appURL(routes, c.Args().First())
	if url == "" {
		return fmt.Errorf("%s has no HTTP route: add one with `flynn route add http DOMAIN`", name)
	}
	browser := r.browser()
	if r.env.Terminal == nil || browser == nil {
		fmt.Fprintln(r.env.Stdout, url)
		return nil
	}
	fmt.Fprintf(r.env.Stdout, "Opening %s\n", url)
	cmd := exec.CommandContext(c.Context, browser[0], browserArgs(browser[1:], url)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = r.env.Stdin, r.env.Stdout, r.env.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("open %s with %s: %w", url, browser[0], err)
	}
	return nil
}

// appURL is the URL of the first HTTP route of routes that is not a
// wildcard, with path after it ("/" when empty, as a push prints it); ""
// when there is none.
func appURL(routes []*controller.Route, path string) string {
	for _, rt := range routes {
		if rt.Type != controller.RouteTypeHTTP || strings.Contains(rt.Domain, "*") {
			continue
		}
		scheme := "http://"
		if rt.Certificate != nil {
			scheme = "https://"
		}
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		return scheme + rt.Domain + path
	}
	return ""
}

// browser is the command that opens a URL: $BROWSER (its first entry,
// when it lists several separated by ":", with its arguments), else
// xdg-open or macOS's open when on the PATH; nil when there is none.
func (r *runner) browser() []string {
	if b, _, _ := strings.Cut(r.env.Browser, ":"); strings.TrimSpace(b) != "" {
		return strings.Fields(b)
	}
	opener := "xdg-open"
	if runtime.GOOS == "darwin" {
		opener = "open"
	}
	if path, err := exec.LookPath(opener); err == nil {
		return []string{path}
	}
	return nil
}

// browserArgs are the arguments that open url: args with "%s" replaced by
// it, as $BROWSER's convention has it, or with url after them when none
// holds "%s".
func browserArgs(args []string, url string) []string {
	out := make([]string, 0, len(args)+1)
	substituted := false
	for _, a := range args {
		if strings.Contains(a, "%s") {
			a, substituted = strings.ReplaceAll(a, "%s", url), true
		}
		out = append(out, a)
	}
	if !substituted {
		out = append(out, url)
	}
	return out
}
