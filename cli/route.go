package cli

import (
	"fmt"
	"os"

	urfave "github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/controller"
)

func (r *runner) routeCommand() *urfave.Command {
	serviceFlag := func() urfave.Flag {
		return &urfave.StringFlag{Name: "service", Aliases: []string{"s"}, Usage: "discoverd `SERVICE` to send traffic to (default: the web process's service, APP-web)"}
	}
	noRequestLogFlag := func(what string) urfave.Flag {
		return &urfave.BoolFlag{Name: "no-request-log", Usage: "write no router line per " + what + " in the app's log (for a high-traffic app)"}
	}
	return &urfave.Command{
		Name:  "route",
		Usage: "manage how the router sends traffic to an app",
		Description: `Without a subcommand, lists the app's routes.

Example:
   flynn route add http example.com
   flynn route list`,
		Flags:  []urfave.Flag{appFlag(), jsonFlag()},
		Action: r.routeList,
		Subcommands: []*urfave.Command{
			{
				Name:  "add",
				Usage: "add a route",
				Description: `Example:
   flynn route add http example.com --path /api --sticky
   flynn route add tcp --service example-db`,
				Subcommands: []*urfave.Command{
					{
						Name:      "http",
						Usage:     "route HTTP(S) requests for a domain (and path prefix)",
						ArgsUsage: "DOMAIN",
						Description: `Routes requests whose Host is DOMAIN ("*.example.com" for every
subdomain) and whose path starts with --path. --tls-cert and --tls-key give
the PEM certificate and key served for DOMAIN.

Example:
   flynn route add http example.com --tls-cert cert.pem --tls-key key.pem`,
						Flags: append([]urfave.Flag{
							appFlag(),
							serviceFlag(),
							&urfave.StringFlag{Name: "path", Aliases: []string{"p"}, Usage: "path `PREFIX` (default /)"},
							&urfave.BoolFlag{Name: "sticky", Usage: "keep each client on one backend (signed cookie)"},
							&urfave.StringFlag{Name: "tls-cert", Usage: "PEM certificate chain `FILE`"},
							&urfave.StringFlag{Name: "tls-key", Usage: "PEM private key `FILE`"},
							noRequestLogFlag("request"),
						}, systemFlags()...),
						Action: r.routeAddHTTP,
					},
					{
						Name:  "tcp",
						Usage: "route a TCP port of the router",
						Description: `Routes connections to a port of the router. An app's TCP routes use the
router's ports 3000-3999, the ones apps may reach: without --port the
controller picks a free one there and the command prints it. (System apps'
routes may use any port.)

Example:
   flynn route add tcp --service example-db
   flynn route add tcp --port 3306 --service example-mysql`,
						Flags: append([]urfave.Flag{
							appFlag(),
							serviceFlag(),
							&urfave.IntFlag{Name: "port", Usage: "router `PORT` to listen on, 3000-3999 (default: a free one)"},
							noRequestLogFlag("connection"),
						}, systemFlags()...),
						Action: r.routeAddTCP,
					},
				},
			},
			{
				Name:        "list",
				Usage:       "list the app's routes",
				Description: "Example:\n   flynn -a example route list --json",
				Flags:       []urfave.Flag{appFlag(), jsonFlag()},
				Action:      r.routeList,
			},
			{
				Name:      "update",
				Usage:     "change a route's settings",
				ArgsUsage: "ID",
				Description: `--request-log=false stops the router's line per request (per
connection of a TCP route) in the app's log, as --no-request-log of
"route add" does; --request-log=true brings them back.

Example:
   flynn route update 7f9c24e5-… --request-log=false`,
				Flags: append([]urfave.Flag{
					appFlag(),
					&urfave.BoolFlag{Name: "request-log", Usage: "whether the router writes a line per request in the app's log"},
				}, systemFlags()...),
				Action: r.routeUpdate,
			},
			{
				Name:        "remove",
				Usage:       "remove a route",
				ArgsUsage:   "ID",
				Description: "Example:\n   flynn route remove 7f9c24e5-…",
				Flags:       append([]urfave.Flag{appFlag()}, systemFlags()...),
				Action:      r.routeRemove,
			},
		},
	}
}

// defaultService is the service of the app's web process: the release's
// when it names one, else "<app>-web".
func (r *runner) defaultService(c *urfave.Context, app *controller.App) (string, error) {
	if app.ReleaseID != "" {
		rel, err := r.api.Release(c.Context, app.ReleaseID)
		if err != nil {
			return "", err
		}
		if web, ok := rel.Processes["web"]; ok && web.Service != "" {
			return web.Service, nil
		}
	}
	return app.Name + "-web", nil
}

func (r *runner) addRoute(c *urfave.Context, route *controller.Route) error {
	api, app, err := r.changeApp(c)
	if err != nil {
		return err
	}
	if route.Service = c.String("service"); route.Service == "" {
		if route.Service, err = r.defaultService(c, app); err != nil {
			return err
		}
	}
	if err := api.CreateRoute(c.Context, app.ID, route); err != nil {
		return err
	}
	fmt.Fprintf(r.env.Stdout, "Created route %s: %s → %s\n", route.ID, routeTarget(route), route.Service)
	return nil
}

func (r *runner) routeAddHTTP(c *urfave.Context) error {
	if c.NArg() != 1 {
		return usageError(c, "want DOMAIN")
	}
	route := &controller.Route{Type: controller.RouteTypeHTTP, Domain: c.Args().First(), Path: c.String("path"), Sticky: c.Bool("sticky"), NoRequestLog: c.Bool("no-request-log")}
	certFile, keyFile := c.String("tls-cert"), c.String("tls-key")
	if (certFile == "") != (keyFile == "") {
		return usageError(c, "--tls-cert and --tls-key go together")
	}
	if certFile != "" {
		cert, err := os.ReadFile(certFile)
		if err != nil {
			return fmt.Errorf("TLS certificate: %w", err)
		}
		key, err := os.ReadFile(keyFile)
		if err != nil {
			return fmt.Errorf("TLS key: %w", err)
		}
		route.Certificate = &controller.Certificate{Cert: string(cert), Key: string(key)}
	}
	return r.addRoute(c, route)
}

func (r *runner) routeAddTCP(c *urfave.Context) error {
	if c.NArg() != 0 {
		return usageError(c, "takes no arguments; give the port with --port")
	}
	if c.IsSet("port") && c.Int("port") <= 0 {
		return usageError(c, "--port must be a port number")
	}
	return r.addRoute(c, &controller.Route{Type: controller.RouteTypeTCP, Port: c.Int("port"), NoRequestLog: c.Bool("no-request-log")})
}

func (r *runner) routeList(c *urfave.Context) error {
	if c.NArg() > 0 {
		return usageError(c, "unknown subcommand %q", c.Args().First())
	}
	name, api, err := r.appAPI(c)
	if err != nil {
		return err
	}
	routes, err := api.AppRoutes(c.Context, name)
	if err != nil {
		return err
	}
	if lookupBool(c, "json") {
		return writeJSON(r.env.Stdout, routes)
	}
	return renderRoutes(r.env.Stdout, routes)
}

func (r *runner) routeUpdate(c *urfave.Context) error {
	if c.NArg() != 1 {
		return usageError(c, "want a route ID")
	}
	if !c.IsSet("request-log") {
		return usageError(c, "nothing to change: give --request-log=true or --request-log=false")
	}
	api, app, err := r.changeApp(c)
	if err != nil {
		return err
	}
	off := !c.Bool("request-log")
	route, err := api.UpdateRoute(c.Context, app.ID, c.Args().First(), controller.RouteUpdate{NoRequestLog: &off})
	if err != nil {
		return err
	}
	state := "on"
	if route.NoRequestLog {
		state = "off"
	}
	fmt.Fprintf(r.env.Stdout, "Updated route %s: %s, request log %s.\n", route.ID, routeTarget(route), state)
	return nil
}

func (r *runner) routeRemove(c *urfave.Context) error {
	if c.NArg() != 1 {
		return usageError(c, "want a route ID")
	}
	api, app, err := r.changeApp(c)
	if err != nil {
		return err
	}
	if err := api.DeleteRoute(c.Context, app.ID, c.Args().First()); err != nil {
		return err
	}
	fmt.Fprintf(r.env.Stdout, "Route %s removed.\n", c.Args().First())
	return nil
}
