package cli

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	urfave "github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// The cluster's build env (controller.BuildEnv) is the operator's: anyone
// may read it, but changing it steers every app's builds and jobs, so, as
// for a system app, it takes --system, which makes the call with the
// cluster key. The controller refuses a change made with an API key all
// the same; asking for --system here says so before any request, in the
// words every other platform change uses.

func (r *runner) clusterBuildEnvCommand() *urfave.Command {
	changeFlags := func(extra ...urfave.Flag) []urfave.Flag {
		return append(append(extra, jsonFlag()), systemFlags()...)
	}
	return &urfave.Command{
		Name:  "build-env",
		Usage: "show or change the cluster's build env: variables and CA certificates for every app",
		Description: `The build env is what every build and every job of every app (but system
apps) gets besides its own env: package mirrors (GOPROXY,
npm_config_registry, PIP_INDEX_URL, …) and extra CA certificates to trust
(a private registry's, a TLS-inspecting proxy's). An app's own env wins
over it, variable by variable. Without a subcommand, shows it.

Changing it takes --system: the change is made with the cluster key, read
from $FLYNN_CLUSTER_KEY or --cluster-key-file. Builds and jobs started
afterwards get the change; running jobs keep what they started with
(` + "`flynn restart`" + ` restarts an app's).

Example:
   flynn cluster build-env
   flynn --system cluster build-env set GOPROXY=https://goproxy.internal --ca-file internal-ca.pem
   flynn --system cluster build-env unset GOPROXY`,
		Flags:  []urfave.Flag{jsonFlag()},
		Action: r.buildEnvShow,
		Subcommands: []*urfave.Command{
			{
				Name:      "set",
				Usage:     "set variables, or the CA certificates",
				ArgsUsage: "[NAME=VALUE…]",
				Description: `Sets variables (others stay as they are). --ca-file replaces the CA
certificates with those of a PEM file; --no-ca removes them.

Example:
   flynn --system cluster build-env set GOPROXY=https://goproxy.internal npm_config_registry=https://npm.internal
   flynn --system cluster build-env set --ca-file internal-ca.pem`,
				Flags: changeFlags(
					&urfave.StringFlag{Name: "ca-file", Usage: "replace the CA certificates with those of PEM `FILE`"},
					&urfave.BoolFlag{Name: "no-ca", Usage: "remove the CA certificates"},
				),
				Action: r.buildEnvSet,
			},
			{
				Name:        "unset",
				Usage:       "remove variables",
				ArgsUsage:   "NAME…",
				Description: "Example:\n   flynn --system cluster build-env unset GOPROXY",
				Flags:       changeFlags(),
				Action:      r.buildEnvUnset,
			},
		},
	}
}

func (r *runner) buildEnvShow(c *urfave.Context) error {
	if c.NArg() > 0 {
		return usageError(c, "unknown subcommand %q", c.Args().First())
	}
	api, err := r.connect(c)
	if err != nil {
		return err
	}
	be, err := api.BuildEnv(c.Context)
	if err != nil {
		return buildEnvError(err)
	}
	return r.printBuildEnv(c, be)
}

func (r *runner) buildEnvSet(c *urfave.Context) error {
	patch := controller.BuildEnvPatch{}
	set := map[string]string{}
	for _, a := range c.Args().Slice() {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return usageError(c, "%q is not NAME=VALUE", a)
		}
		set[k] = v
	}
	if len(set) > 0 {
		patch.Env = &controller.EnvPatch{Set: set}
	}
	switch file := c.String("ca-file"); {
	case file != "" && c.Bool("no-ca"):
		return usageError(c, "--ca-file and --no-ca exclude each other")
	case file != "":
		certs, err := readCACerts(file)
		if err != nil {
			return err
		}
		patch.CACerts = &certs
	case c.Bool("no-ca"):
		none := ""
		patch.CACerts = &none
	}
	if patch.Env == nil && patch.CACerts == nil {
		return usageError(c, "want NAME=VALUE…, --ca-file FILE or --no-ca")
	}
	return r.patchBuildEnv(c, patch)
}

func (r *runner) buildEnvUnset(c *urfave.Context) error {
	if c.NArg() == 0 {
		return usageError(c, "want NAME…")
	}
	return r.patchBuildEnv(c, controller.BuildEnvPatch{Env: &controller.EnvPatch{Unset: c.Args().Slice()}})
}

// patchBuildEnv makes the change, refused up front without --system.
func (r *runner) patchBuildEnv(c *urfave.Context, patch controller.BuildEnvPatch) error {
	if !lookupBool(c, "system") {
		return errors.New("the cluster's build env is the operator's: changing it takes --system, which uses the cluster key from $FLYNN_CLUSTER_KEY or --cluster-key-file")
	}
	api, err := r.connect(c)
	if err != nil {
		return err
	}
	be, err := api.PatchBuildEnv(c.Context, patch)
	if err != nil {
		return buildEnvError(err)
	}
	if !lookupBool(c, "json") {
		fmt.Fprintf(r.env.Stdout, "Changed the build env of cluster %s; builds and jobs started from now on get it.\n", r.cluster.Name)
	}
	return r.printBuildEnv(c, be)
}

func (r *runner) printBuildEnv(c *urfave.Context, be *controller.BuildEnv) error {
	if lookupBool(c, "json") {
		return writeJSON(r.env.Stdout, be)
	}
	return renderBuildEnv(r.env.Stdout, be)
}

// buildEnvError says what a not_found answer means: a controller older
// than build envs.
func buildEnvError(err error) error {
	if httpjson.IsNotFound(err) {
		return fmt.Errorf("the cluster's controller has no build env (it is older than them): %w", err)
	}
	return err
}

// readCACerts reads a PEM file of certificates, refusing anything else in
// it (a private key given by mistake, say), and returns them as PEM.
func readCACerts(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--ca-file: %w", err)
	}
	var out strings.Builder
	n := 0
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		n++
		if block.Type != "CERTIFICATE" {
			return "", fmt.Errorf("--ca-file %s: block %d is a %s, not a CERTIFICATE", path, n, block.Type)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return "", fmt.Errorf("--ca-file %s: certificate %d: %w", path, n, err)
		}
		// Headers and text around the blocks are left out.
		if err := pem.Encode(&out, &pem.Block{Type: block.Type, Bytes: block.Bytes}); err != nil {
			return "", err
		}
	}
	if n == 0 {
		return "", fmt.Errorf("--ca-file %s holds no PEM certificate", path)
	}
	return out.String(), nil
}

// renderBuildEnv draws the variables as a table and names the CA
// certificates by their subjects' common names.
func renderBuildEnv(w io.Writer, be *controller.BuildEnv) error {
	if len(be.Env) == 0 {
		fmt.Fprintln(w, "No variables set.")
	} else {
		t := newTable(w, "NAME", "VALUE")
		for _, k := range slices.Sorted(maps.Keys(be.Env)) {
			t.row(k, be.Env[k])
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	names := caNames(be.CACerts)
	if len(names) == 0 {
		_, err := fmt.Fprintln(w, "CA certificates: none")
		return err
	}
	_, err := fmt.Fprintf(w, "CA certificates: %d (%s)\n", len(names), strings.Join(names, ", "))
	return err
}

// caNames names each PEM certificate of pemText: its subject's common
// name, else its whole subject.
func caNames(pemText string) []string {
	var names []string
	for rest := []byte(pemText); ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return names
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		switch {
		case err != nil:
			names = append(names, "unreadable "+block.Type)
		case cert.Subject.CommonName != "":
			names = append(names, cert.Subject.CommonName)
		default:
			names = append(names, cert.Subject.String())
		}
	}
}
