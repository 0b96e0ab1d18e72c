package bootstrap

import (
	"context"
	"fmt"
	"strings"
)

// join prints, beside the cluster-add line, the command that makes another
// machine a node of the cluster: install-flynn, told the address of a node
// to join through (FLYNN_JOIN) and the cluster key. The key goes in the
// environment, never in an argument, where `ps` on the new machine would
// show it; the line holds it all the same, so it is for the operator's
// eyes (and a file only root reads), like the cluster key itself.
type join struct {
	stepHead
	// Command is the command line with the node address and the cluster
	// key expanded: "FLYNN_JOIN=… FLYNN_CLUSTER_KEY=… script/install-flynn".
	Command string `json:"command"`
}

func (j *join) run(_ context.Context, r *run, _ string) (string, error) {
	cmd := strings.Join(strings.Fields(j.Command), " ")
	if !strings.HasPrefix(cmd, "FLYNN_JOIN=") {
		return "", fmt.Errorf("command must start with FLYNN_JOIN=")
	}
	if r.cfg.ClusterKey == "" {
		// Nothing to give a new node: install-flynn would generate it a
		// key of its own, which this cluster's hosts do not share.
		return "skipped: this run has no cluster key", nil
	}
	// The words before the command are its environment; the key may
	// appear there alone.
	words := strings.Fields(cmd)
	i := 0
	for i < len(words) && strings.Contains(words[i], "=") {
		i++
	}
	if i == len(words) {
		return "", fmt.Errorf("command has no program after its environment")
	}
	if !strings.Contains(strings.Join(words[:i], " "), "FLYNN_CLUSTER_KEY="+r.cfg.ClusterKey) {
		return "", fmt.Errorf("command must pass the cluster key as FLYNN_CLUSTER_KEY={{cluster_key}}")
	}
	if strings.Contains(strings.Join(words[i:], " "), r.cfg.ClusterKey) {
		return "", fmt.Errorf("command carries the cluster key in an argument; pass it in FLYNN_CLUSTER_KEY")
	}
	r.join = cmd
	return "", nil
}
