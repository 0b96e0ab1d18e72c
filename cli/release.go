package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	urfave "github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
)

func (r *runner) releaseCommand() *urfave.Command {
	return &urfave.Command{
		Name:  "release",
		Usage: "list, show and add an app's releases",
		Description: `Without a subcommand, lists the releases.

Example:
   flynn release list
   flynn release show v2
   flynn release add -f release.json flynn/stack:latest`,
		Flags:  []urfave.Flag{appFlag(), jsonFlag()},
		Action: r.releaseList,
		Subcommands: []*urfave.Command{
			{
				Name:        "list",
				Usage:       "list releases, oldest first; * marks the current one",
				Description: "Example:\n   flynn -a example release list",
				Flags:       []urfave.Flag{appFlag(), jsonFlag()},
				Action:      r.releaseList,
			},
			{
				Name:        "show",
				Usage:       "show a release (default: the current one)",
				ArgsUsage:   "[VERSION|ID]",
				Description: "Example:\n   flynn release show v3",
				Flags:       []urfave.Flag{appFlag(), jsonFlag()},
				Action:      r.releaseShow,
			},
			{
				Name:      "add",
				Usage:     "make a release of a Docker image that every host has, and deploy it",
				ArgsUsage: "IMAGE",
				Description: `Makes the app's next release from its current one with IMAGE as its
artifact, and with the process types and env of -f FILE when given
(JSON: {"processes": {"web": {"cmd": ["…"], "ports": [{"proto": "http"}]}},
"env": {"K": "V"}}; process types replace the current ones, env variables
are added), then follows the deployment like env set. IMAGE must exist on
every host (an image built there, such as the platform's own); an image on
your machine goes up with "flynn docker push" instead.

Example:
   flynn release add -f release.json flynn/stack:latest`,
				Flags: append(append([]urfave.Flag{appFlag(),
					&urfave.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "JSON `FILE` with the release's processes and env"},
				}, deployFlags()...), systemFlags()...),
				Action: r.releaseAdd,
			},
		},
	}
}

func (r *runner) releaseList(c *urfave.Context) error {
	if c.NArg() > 0 {
		return usageError(c, "unknown subcommand %q", c.Args().First())
	}
	api, app, err := r.app(c)
	if err != nil {
		return err
	}
	rels, err := api.AppReleases(c.Context, app.ID)
	if err != nil {
		return err
	}
	if lookupBool(c, "json") {
		return writeJSON(r.env.Stdout, rels)
	}
	return renderReleases(r.env.Stdout, r.env.Now(), rels, app.ReleaseID)
}

// findRelease finds a release of app by "v3", "3" or its id.
func findRelease(c *urfave.Context, api *client.Client, app *controller.App, ref string) (*controller.Release, error) {
	rels, err := api.AppReleases(c.Context, app.ID)
	if err != nil {
		return nil, err
	}
	version, verr := strconv.Atoi(strings.TrimPrefix(ref, "v"))
	for _, rel := range rels {
		if rel.ID == ref || (verr == nil && rel.Version == version) {
			return rel, nil
		}
	}
	return nil, fmt.Errorf("app %s has no release %q", app.Name, ref)
}

func (r *runner) releaseShow(c *urfave.Context) error {
	if c.NArg() > 1 {
		return usageError(c, "want at most one VERSION or ID")
	}
	api, app, err := r.app(c)
	if err != nil {
		return err
	}
	var rel *controller.Release
	if ref := c.Args().First(); ref != "" {
		rel, err = findRelease(c, api, app, ref)
	} else if app.ReleaseID == "" {
		err = errNoRelease
	} else {
		rel, err = api.Release(c.Context, app.ReleaseID)
	}
	if err != nil {
		return err
	}
	artifact := &controller.Artifact{} // a release of config alone has none
	if rel.ArtifactID != "" {
		if artifact, err = api.Artifact(c.Context, rel.ArtifactID); err != nil {
			return err
		}
	}
	if lookupBool(c, "json") {
		return writeJSON(r.env.Stdout, struct {
			*controller.Release
			ArtifactURI string `json:"artifact_uri"`
			Current     bool   `json:"current"`
		}{rel, artifact.URI, rel.ID == app.ReleaseID})
	}
	return renderRelease(r.env.Stdout, r.env.Now(), rel, artifact, rel.ID == app.ReleaseID)
}

func (r *runner) rollbackCommand() *urfave.Command {
	return &urfave.Command{
		Name:      "rollback",
		Usage:     "deploy an earlier release again",
		ArgsUsage: "[VERSION|ID]",
		Description: `Deploys RELEASE (default: the release before the current one, passing
over releases whose deployment failed) as the app's current release. Releases never change, so the old release itself is
deployed again: its artifact, env and processes come back exactly, and
"release list" marks it current. Run it again to step further back. It
waits until the deployment has finished (unless --no-wait); a failed one
leaves the app where it was and exits non-zero.

Example:
   flynn rollback        # v5 → v4
   flynn rollback v2`,
		Flags:  append(append([]urfave.Flag{appFlag()}, deployFlags()...), systemFlags()...),
		Action: r.rollback,
	}
}

func (r *runner) rollback(c *urfave.Context) error {
	if c.NArg() > 1 {
		return usageError(c, "want at most one VERSION or ID")
	}
	api, app, err := r.changeApp(c)
	if err != nil {
		return err
	}
	if app.ReleaseID == "" {
		return errNoRelease
	}
	current, err := api.Release(c.Context, app.ReleaseID)
	if err != nil {
		return err
	}
	var target *controller.Release
	if ref := c.Args().First(); ref != "" {
		if target, err = findRelease(c, api, app, ref); err != nil {
			return err
		}
	} else {
		rels, err := api.AppReleases(c.Context, app.ID)
		if err != nil {
			return err
		}
		// The release before is the newest older one, passing over those
		// whose every deployment failed: they never served.
		deployments, err := api.Deployments(c.Context, app.ID)
		if err != nil {
			return err
		}
		failedOnly := map[string]bool{}
		for _, d := range deployments {
			failed := d.Status == controller.DeploymentFailed
			if prev, seen := failedOnly[d.NewReleaseID]; !seen || prev {
				failedOnly[d.NewReleaseID] = failed
			}
		}
		for _, rel := range rels {
			if rel.Version < current.Version && !failedOnly[rel.ID] && (target == nil || rel.Version > target.Version) {
				target = rel
			}
		}
		if target == nil {
			return fmt.Errorf("%s is at %s, the first release; nothing to roll back to", app.Name, controller.ReleaseVersion(current.Version))
		}
	}
	if target.ID == current.ID {
		return fmt.Errorf("%s is at %s already", app.Name, controller.ReleaseVersion(current.Version))
	}
	fmt.Fprintf(r.env.Stdout, "Rolling %s back from %s to %s.\n", app.Name, controller.ReleaseVersion(current.Version), controller.ReleaseVersion(target.Version))
	return r.deployRelease(c, api, app, target)
}

// releaseFile is the JSON of `release add -f`.
type releaseFile struct {
	Processes map[string]controller.ProcessType `json:"processes"`
	Env       map[string]string                 `json:"env"`
}

func (r *runner) releaseAdd(c *urfave.Context) error {
	if c.NArg() != 1 {
		return usageError(c, "want one IMAGE")
	}
	image := c.Args().First()
	if strings.Contains(image, "://") {
		return fmt.Errorf("%s is a URL: release add takes a Docker image reference that every host has (flynn docker push uploads one of yours)", image)
	}
	var file releaseFile
	if path := c.String("file"); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("-f: %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&file); err != nil {
			return fmt.Errorf("-f %s: %w", path, err)
		}
	}
	api, app, err := r.changeApp(c)
	if err != nil {
		return err
	}
	if file.Processes == nil {
		if app.ReleaseID == "" {
			return errors.New("the app has no release to take process types from: give them with -f FILE")
		}
	}
	art := &controller.Artifact{Type: controller.ArtifactTypeDocker, URI: image}
	if err := api.CreateArtifact(c.Context, art); err != nil {
		return err
	}
	patch := controller.ReleasePatch{ArtifactID: art.ID, Processes: file.Processes}
	if len(file.Env) > 0 {
		patch.Env = &controller.EnvPatch{Set: file.Env}
	}
	return r.patchRelease(c, api, app, patch)
}
