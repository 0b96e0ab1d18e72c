package bootstrap

import (
	"context"
	"fmt"
	"strings"
)

// clusterAdd ends a run with the `flynn cluster add …` command that makes
// the flynn CLI on this machine use the new cluster; the run prints it on
// a line of its own, last.
type clusterAdd struct {
	stepHead
	// Command is the command line, with the pin, domain and key expanded.
	Command string `json:"command"`
}

func (c *clusterAdd) run(_ context.Context, r *run, _ string) (string, error) {
	cmd := strings.TrimSpace(c.Command)
	if !strings.HasPrefix(cmd, "flynn cluster add ") {
		return "", fmt.Errorf("command must start with \"flynn cluster add\"")
	}
	r.clusterAdd = cmd
	return "", nil
}
