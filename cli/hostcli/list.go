package hostcli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/discoverd"
	discoverdclient "github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/host/client"
	"github.com/openflynn/flynn/pkg/cmdline"
)

// Node statuses `list` prints.
const (
	nodeUp          = "up"
	nodeUnreachable = "unreachable"
)

// nodeStatusTimeout bounds the wait for one host's status.
const nodeStatusTimeout = 3 * time.Second

// node is one host of the cluster as `list` reports it.
type node struct {
	// ID is the host's id.
	ID string `json:"id"`
	// Addr is the host's address (its external IP).
	Addr string `json:"addr"`
	// URL is its host API.
	URL string `json:"url"`
	// Status is "up" when the host API answered, else "unreachable".
	Status string `json:"status"`
	// Jobs counts the host's jobs by state (none when unreachable).
	Jobs map[host.JobState]int `json:"jobs,omitempty"`
	// Error says why it is unreachable.
	Error string `json:"error,omitempty"`
}

func listCommand(env *Env) *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list the cluster's hosts (from discoverd) with their status and jobs",
		Flags: []cli.Flag{
			cmdline.List("discoverd-url", "discoverd to read the hosts from, comma-separated: the first that answers "+
				"(default: the one of the host --host-url names, at port 1111)"),
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
		},
		Action: func(c *cli.Context) error {
			key, err := cmdline.SecretOf(c, "cluster-key")
			if err != nil {
				return err
			}
			urls := cmdline.ListOf(c, "discoverd-url")
			if len(urls) == 0 {
				u, err := nodeDiscoverd(c.String("host-url"))
				if err != nil {
					return err
				}
				urls = []string{u}
			}
			insts, err := hostInstances(c.Context, urls, key)
			if err != nil {
				return err
			}
			nodes := nodeStatuses(c.Context, insts, key)
			if c.Bool("json") {
				enc := json.NewEncoder(env.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(nodes)
			}
			return writeNodes(env.Stdout, nodes)
		},
	}
}

// nodeDiscoverd returns the URL of the discoverd on the node of the host
// API at hostURL.
func nodeDiscoverd(hostURL string) (string, error) {
	u, err := url.Parse(hostURL)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("--host-url %q names no host; name the discoverd with --discoverd-url", hostURL)
	}
	return discoverd.NodeURL(u.Hostname()), nil
}

// hostInstances lists discoverd's flynn-host service from the first of
// urls that answers.
func hostInstances(ctx context.Context, urls []string, key string) ([]*discoverd.Instance, error) {
	var errs []error
	for _, u := range urls {
		insts, err := discoverdclient.New(u, key).Instances(ctx, "flynn-host")
		if err == nil {
			return insts, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("list hosts: %w", errors.Join(errs...))
}

// nodeStatuses asks every host for its status at once, and returns the
// hosts sorted by id, then address.
func nodeStatuses(ctx context.Context, insts []*discoverd.Instance, key string) []node {
	nodes := make([]node, len(insts))
	var wg sync.WaitGroup
	for i, in := range insts {
		nodes[i] = node{ID: in.Meta["id"], Addr: in.Host(), URL: "http://" + in.Addr}
		wg.Add(1)
		go func(n *node) {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, nodeStatusTimeout)
			defer cancel()
			st, err := client.New(n.URL, key).Status(sctx)
			if err != nil {
				n.Status, n.Error = nodeUnreachable, err.Error()
				return
			}
			n.Status, n.Jobs = nodeUp, st.Jobs
			if n.ID == "" {
				n.ID = st.ID
			}
		}(&nodes[i])
	}
	wg.Wait()
	slices.SortFunc(nodes, func(a, b node) int {
		return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.Addr, b.Addr))
	})
	return nodes
}

// writeNodes prints the node table.
func writeNodes(w io.Writer, nodes []node) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tADDRESS\tSTATUS\tJOBS")
	for _, n := range nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", cmp.Or(n.ID, "-"), n.Addr, n.Status, jobCounts(n))
	}
	return tw.Flush()
}

// jobStates returns the states in the order `list` counts them.
func jobStates() []host.JobState {
	return []host.JobState{
		host.StateUp, host.StateStarting, host.StatePending, host.StateStopping,
		host.StateDown, host.StateCrashed, host.StateFailed,
	}
}

// jobCounts is "3 up, 1 starting", "none", or "-" for an unreachable host.
func jobCounts(n node) string {
	if n.Status != nodeUp {
		return "-"
	}
	var parts []string
	for _, s := range jobStates() {
		if k := n.Jobs[s]; k > 0 {
			parts = append(parts, strconv.Itoa(k)+" "+string(s))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
