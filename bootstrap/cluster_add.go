package bootstrap

import (
	"context"
	"fmt"
	"strings"
)

// clusterAdd ends a run with the `flynn cluster add …` command that makes
// the flynn CLI on this machine use the new cluster; the run prints it on
// a line of its own, last. The line is for a person, so it must carry a
// person's API key (an add-api-key step's secret), never the controller
// key, and should pass it on stdin ("… - <<<KEY"), where `ps` cannot see
// it. It should carry gitreceive's host key (--git-host-key
// '{{STEP.public_key}}' of the gen-ssh-key step whose private key
// gitreceive runs with): the CLI writes it to known_hosts, so that the
// first push is verified instead of trusted on first use.
type clusterAdd struct {
	stepHead
	// Command is the command line, with the pin, host key, domain and key
	// expanded.
	Command string `json:"command"`
}

func (c *clusterAdd) run(_ context.Context, r *run, _ string) (string, error) {
	cmd := strings.TrimSpace(c.Command)
	if !strings.HasPrefix(cmd, "flynn cluster add ") {
		return "", fmt.Errorf("command must start with \"flynn cluster add\"")
	}
	if key, err := r.controllerKey(); err == nil && key != "" && strings.Contains(cmd, key) {
		return "", fmt.Errorf("command carries the controller key; give it a person's key (an add-api-key step's {{STEP}})")
	}
	r.clusterAdd = cmd
	return "", nil
}
