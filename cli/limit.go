package cli

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	urfave "github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/hostjob"
	"github.com/openflynn/flynn/pkg/cmdline"
)

func (r *runner) limitCommand() *urfave.Command {
	return &urfave.Command{
		Name:  "limit",
		Usage: "show or change the limits of an app's processes",
		Description: fmt.Sprintf(`Without a subcommand, prints the limits of each process type of the
current release: memory, number of processes (pids), and CPU when one is
set. A type that sets no memory or pids limit gets the cluster's default
(%s memory, %d pids), marked "(default)".

Example:
   flynn limit
   flynn limit set web memory=2GiB pids=1024`, cmdline.FormatSize(hostjob.DefaultMemory), hostjob.DefaultPids),
		Flags:  []urfave.Flag{appFlag(), jsonFlag()},
		Action: r.limitList,
		Subcommands: []*urfave.Command{
			{
				Name:      "set",
				Usage:     "change a process type's limits (a new release)",
				ArgsUsage: "TYPE LIMIT=VALUE…",
				Description: `LIMIT is memory (bytes, or a whole number with KiB, MiB, GiB or TiB),
pids (a count) or cpu (cores, "0.5", or millicores, "500m"); VALUE
"default" removes the type's own limit. The change is a new release, like
the current one but for the limits, deployed as ` + "`flynn env set`" + ` deploys:
it waits until the deployment has finished (unless --no-wait).

Example:
   flynn limit set web memory=2GiB pids=1024
   flynn limit set worker cpu=1.5 memory=default`,
				Flags:  append(append([]urfave.Flag{appFlag()}, deployFlags()...), systemFlags()...),
				Action: r.limitSet,
			},
		},
	}
}

// limits are a process type's effective limits, as `flynn limit` shows
// them.
type limits struct {
	// Memory in bytes and Pids; zero only for a type on the host's network
	// that sets none (no default applies there).
	Memory int64 `json:"memory,omitempty"`
	Pids   int64 `json:"pids,omitempty"`
	// CPU in millicores; zero when unset.
	CPU int64 `json:"cpu,omitempty"`
	// Defaults names the limits that are the cluster's defaults.
	Defaults    []string `json:"defaults,omitempty"`
	HostNetwork bool     `json:"host_network,omitempty"`
}

// effectiveLimits are pt's limits with the defaults that hostjob gives
// every job on the app network.
func effectiveLimits(pt controller.ProcessType) limits {
	l := limits{HostNetwork: pt.HostNetwork}
	if res := pt.Resources; res != nil {
		l.Memory, l.Pids, l.CPU = res.Memory, res.MaxProcs, res.CPU
	}
	if pt.HostNetwork {
		return l
	}
	if l.Memory == 0 {
		l.Memory = hostjob.DefaultMemory
		l.Defaults = append(l.Defaults, "memory")
	}
	if l.Pids == 0 {
		l.Pids = hostjob.DefaultPids
		l.Defaults = append(l.Defaults, "pids")
	}
	return l
}

func (r *runner) limitList(c *urfave.Context) error {
	if c.NArg() > 0 {
		return usageError(c, "unknown subcommand %q", c.Args().First())
	}
	_, _, rel, err := r.currentRelease(c)
	if errors.Is(err, errNoRelease) {
		rel, err = &controller.Release{}, nil
	}
	if err != nil {
		return err
	}
	if lookupBool(c, "json") {
		out := map[string]limits{}
		for typ, pt := range rel.Processes {
			out[typ] = effectiveLimits(pt)
		}
		return writeJSON(r.env.Stdout, out)
	}
	return renderLimits(r.env.Stdout, rel)
}

// limitChange changes one limit of a process type's resources.
type limitChange func(*controller.Resources)

// minMemory is the smallest memory limit Docker accepts.
const minMemory = 6 << 20

// parseLimits reads LIMIT=VALUE arguments.
func parseLimits(args []string) ([]limitChange, error) {
	var changes []limitChange
	for _, a := range args {
		name, value, ok := strings.Cut(a, "=")
		if !ok || value == "" {
			return nil, fmt.Errorf("%q is not LIMIT=VALUE", a)
		}
		reset := value == "default"
		switch name {
		case "memory":
			n := int64(0)
			if !reset {
				var err error
				if n, err = cmdline.ParseSize(value); err != nil {
					return nil, fmt.Errorf("memory: %w", err)
				}
				if n < minMemory {
					return nil, fmt.Errorf("memory %s is below %s, the least a job can run in", value, cmdline.FormatSize(minMemory))
				}
			}
			changes = append(changes, func(res *controller.Resources) { res.Memory = n })
		case "pids":
			n := int64(0)
			if !reset {
				var err error
				if n, err = strconv.ParseInt(value, 10, 64); err != nil || n < 1 {
					return nil, fmt.Errorf("pids %q: want a number of processes, 1 or more", value)
				}
			}
			changes = append(changes, func(res *controller.Resources) { res.MaxProcs = n })
		case "cpu":
			n := int64(0)
			if !reset {
				var err error
				if n, err = parseCPU(value); err != nil {
					return nil, err
				}
			}
			changes = append(changes, func(res *controller.Resources) { res.CPU = n })
		default:
			return nil, fmt.Errorf("unknown limit %q (want memory, pids or cpu)", name)
		}
	}
	return changes, nil
}

// parseCPU reads cores ("0.5", "2") or millicores ("500m") as millicores.
func parseCPU(s string) (int64, error) {
	bad := fmt.Errorf("cpu %q: want cores (0.5) or millicores (500m), more than 0", s)
	if m, ok := strings.CutSuffix(s, "m"); ok {
		n, err := strconv.ParseInt(m, 10, 64)
		if err != nil || n < 1 {
			return 0, bad
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f*1000 < 1 || f > 1<<20 {
		return 0, bad
	}
	return int64(f * 1000), nil
}

// formatCPU writes millicores as cores: 500 → "0.5".
func formatCPU(m int64) string { return strconv.FormatFloat(float64(m)/1000, 'f', -1, 64) }

func (r *runner) limitSet(c *urfave.Context) error {
	if c.NArg() < 2 {
		return usageError(c, "want TYPE LIMIT=VALUE…")
	}
	typ := c.Args().First()
	changes, err := parseLimits(c.Args().Tail())
	if err != nil {
		return usageError(c, "%v", err)
	}
	api, app, rel, err := r.currentRelease(c)
	if err != nil {
		return err
	}
	if err := refuseSystem(c, app); err != nil {
		return err
	}
	pt, ok := rel.Processes[typ]
	if !ok {
		return fmt.Errorf("release %s has no process type %q (it has: %s)", controller.ReleaseVersion(rel.Version), typ, orDash(strings.Join(slices.Sorted(maps.Keys(rel.Processes)), ", ")))
	}
	res := controller.Resources{}
	if pt.Resources != nil {
		res = *pt.Resources
	}
	before := res
	for _, change := range changes {
		change(&res)
	}
	if res == before {
		fmt.Fprintf(r.env.Stdout, "Nothing changed; %s stays at %s.\n", app.Name, controller.ReleaseVersion(rel.Version))
		return nil
	}
	pt.Resources = &res
	if res == (controller.Resources{}) {
		pt.Resources = nil
	}
	procs := maps.Clone(rel.Processes)
	procs[typ] = pt
	// A patch of the processes alone: the env stays as the controller has
	// it, so an env change made meanwhile is not undone.
	return r.patchRelease(c, api, app, controller.ReleasePatch{Processes: procs})
}
