package cli

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/openflynn/flynn/cli/config"
	"github.com/openflynn/flynn/cli/hostcli"
	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/cmdline"
	"github.com/openflynn/flynn/pkg/stacks"
)

// The render functions draw the tables people read. They are pure (data
// and clock in, text out) so golden files pin their output.

func renderClusters(w io.Writer, f *config.File) error {
	t := newTable(w, "NAME", "DOMAIN", "CONTROLLER", "GIT HOST", "DEFAULT")
	for _, c := range f.Clusters {
		def := ""
		if c.Name == f.Default {
			def = "*"
		}
		ctrl := c.ControllerURL
		if c.ControllerAddr != "" {
			ctrl += " via " + c.ControllerAddr
		}
		t.row(c.Name, c.Domain, ctrl, c.GitHost, def)
	}
	return t.flush()
}

func renderKeys(w io.Writer, now time.Time, keys []*controller.Key) error {
	t := newTable(w, "FINGERPRINT", "COMMENT", "ADDED")
	for _, k := range keys {
		t.row(k.Fingerprint, orDash(k.Comment), age(now, k.CreatedAt))
	}
	return t.flush()
}

func renderApps(w io.Writer, now time.Time, apps []*controller.App) error {
	t := newTable(w, "NAME", "ID", "CREATED")
	for _, a := range apps {
		t.row(a.Name, a.ID, age(now, a.CreatedAt))
	}
	return t.flush()
}

func renderInfo(w io.Writer, now time.Time, info *appInfo) error {
	t := newFields(w, info.App.Name)
	t.row("ID:", info.App.ID)
	release := "(none yet: git push to deploy)"
	if info.Release != nil {
		release = controller.ReleaseVersion(info.Release.Version) + " (" + info.Release.ID + ")"
	}
	t.row("Release:", release)
	if info.Release != nil {
		procs := map[string]int{}
		for typ := range info.Release.Processes {
			procs[typ] = info.Processes[typ]
		}
		t.row("Processes:", processCounts(procs))
	}
	routes := []string{}
	for _, r := range info.Routes {
		routes = append(routes, routeTarget(r))
	}
	if len(routes) == 0 {
		routes = append(routes, "(none)")
	}
	t.row("Routes:", strings.Join(routes, ", "))
	if u := appURL(info.Routes, ""); u != "" {
		t.row("Web URL:", u)
	}
	t.row("Git URL:", info.GitURL)
	stack := stacks.Default + " (the default)"
	if info.App.Stack != "" {
		stack = info.App.Stack
	}
	t.row("Stack:", stack)
	if info.App.System {
		t.row("System:", "yes (part of the platform: changing it takes --system)")
	}
	t.row("Created:", age(now, info.App.CreatedAt)+" ago")
	return t.flush()
}

func renderJobs(w io.Writer, now time.Time, jobs []*controller.Job, versions map[string]int) error {
	t := newTable(w, "ID", "TYPE", "STATE", "HOST", "RELEASE", "AGE", "CPU", "MEM", "COMMAND")
	for _, j := range jobs {
		typ := j.Type
		if typ == "" {
			typ = "run"
		}
		rel := "-"
		if v, ok := versions[j.ReleaseID]; ok {
			rel = controller.ReleaseVersion(v)
		}
		state := j.State
		if j.ExitStatus != nil {
			state += " (exit " + strconv.Itoa(*j.ExitStatus) + ")"
		}
		since := j.CreatedAt
		if j.StartedAt != nil {
			since = *j.StartedAt
		}
		cpu, mem := hostcli.JobUsage(j.Stats)
		t.row(j.ID, typ, state, orDash(jobHost(j)), rel, age(now, since), cpu, mem, orDash(strings.Join(j.Args, " ")))
	}
	return t.flush()
}

// jobHost is the node a job runs on: its host id, or else the one its id
// starts with ("<host id>-<uuid>").
func jobHost(j *controller.Job) string {
	if j.HostID != "" {
		return j.HostID
	}
	const uuidLen = 36
	if len(j.ID) > uuidLen+1 && j.ID[len(j.ID)-uuidLen-1] == '-' {
		return j.ID[:len(j.ID)-uuidLen-1]
	}
	return ""
}

func renderHosts(w io.Writer, hosts []*controller.Host) error {
	t := newTable(w, "ID", "ADDRESS", "STATUS", "JOBS")
	for _, h := range hosts {
		jobs := strconv.Itoa(h.Jobs)
		if h.Status != controller.HostUp {
			jobs = "-"
		}
		t.row(h.ID, h.Addr, h.Status, jobs)
	}
	return t.flush()
}

func renderReleases(w io.Writer, now time.Time, rels []*controller.Release, current string) error {
	t := newTable(w, "", "VERSION", "ID", "ENV", "PROCESSES", "CREATED")
	for _, r := range rels {
		mark := ""
		if r.ID == current {
			mark = "*"
		}
		t.row(mark, controller.ReleaseVersion(r.Version), r.ID, strconv.Itoa(len(r.Env)), orDash(strings.Join(slices.Sorted(maps.Keys(r.Processes)), ",")), age(now, r.CreatedAt))
	}
	return t.flush()
}

func renderRelease(w io.Writer, now time.Time, r *controller.Release, a *controller.Artifact, current bool) error {
	t := newFields(w, controller.ReleaseVersion(r.Version))
	t.row("ID:", r.ID)
	if current {
		t.row("Current:", "yes")
	}
	t.row("Artifact:", orDash(a.URI))
	t.row("Created:", age(now, r.CreatedAt)+" ago")
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "Processes:")
	pt := newTable(w, "  TYPE", "COMMAND", "SERVICE")
	for _, typ := range slices.Sorted(maps.Keys(r.Processes)) {
		p := r.Processes[typ]
		pt.row("  "+typ, orDash(strings.Join(p.Cmd, " ")), orDash(p.Service))
	}
	if err := pt.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "Env:")
	for _, k := range slices.Sorted(maps.Keys(r.Env)) {
		fmt.Fprintf(w, "  %s=%s\n", k, r.Env[k])
	}
	return nil
}

// routeTarget is what a route matches: "example.com/api (http)", ":2222
// (tcp)".
func routeTarget(r *controller.Route) string {
	if r.Type == controller.RouteTypeTCP {
		return ":" + strconv.Itoa(r.Port) + " (tcp)"
	}
	return httpTarget(r) + " (http)"
}

// httpTarget is an HTTP route's domain and path, the default path "/" left
// out.
func httpTarget(r *controller.Route) string {
	if r.Path == "/" {
		return r.Domain
	}
	return r.Domain + r.Path
}

func renderRoutes(w io.Writer, routes []*controller.Route) error {
	t := newTable(w, "ID", "TYPE", "ROUTE", "SERVICE", "OPTIONS")
	for _, r := range routes {
		var opts []string
		if r.Sticky {
			opts = append(opts, "sticky")
		}
		if r.Certificate != nil {
			opts = append(opts, "tls")
		}
		if r.DrainBackends {
			opts = append(opts, "drain")
		}
		if r.NoRequestLog {
			opts = append(opts, "no-request-log")
		}
		target := httpTarget(r)
		if r.Type == controller.RouteTypeTCP {
			target = ":" + strconv.Itoa(r.Port)
		}
		t.row(r.ID, r.Type, target, r.Service, orDash(strings.Join(opts, ",")))
	}
	return t.flush()
}

func renderAPIKeys(w io.Writer, now time.Time, keys []*controller.APIKey) error {
	t := newTable(w, "NAME", "ID", "ADDED")
	for _, k := range keys {
		t.row(k.Name, k.ID, age(now, k.CreatedAt))
	}
	return t.flush()
}

// renderLimits draws the limits of each process type of rel; the CPU
// column shows only when some type sets one.
func renderLimits(w io.Writer, rel *controller.Release) error {
	types := slices.Sorted(maps.Keys(rel.Processes))
	showCPU := false
	for _, typ := range types {
		if res := rel.Processes[typ].Resources; res != nil && res.CPU > 0 {
			showCPU = true
		}
	}
	header := []string{"TYPE", "MEMORY", "PIDS"}
	if showCPU {
		header = append(header, "CPU")
	}
	t := newTable(w, header...)
	for _, typ := range types {
		l := effectiveLimits(rel.Processes[typ])
		mark := func(name, value string) string {
			switch {
			case slices.Contains(l.Defaults, name):
				return value + " (default)"
			case value == "0" && l.HostNetwork:
				return "unlimited"
			}
			return value
		}
		row := []string{typ, mark("memory", cmdline.FormatSize(l.Memory)), mark("pids", strconv.FormatInt(l.Pids, 10))}
		if showCPU {
			cpu := "-"
			if l.CPU > 0 {
				cpu = formatCPU(l.CPU)
			}
			row = append(row, cpu)
		}
		t.row(row...)
	}
	return t.flush()
}
