package server

import (
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/openflynn/flynn/host/firewall"
)

// MaxNode is the highest node number: node N takes ports from
// 55000+(N-1)*1000, which must stay below 65536.
const MaxNode = 10

// Node is what sets apart the nodes of one machine (tests, `make cluster
// NODES=3`): each of them a flynn-host with its own address, state,
// ports, app network and firewall chains, side by side on one Docker
// engine. Node 1 has the names a lone node always had.
type Node struct {
	// N is the node's number, 1 to MaxNode.
	N int
	// ExternalIP is 127.0.0.N.
	ExternalIP string
	// StateDir is /var/lib/flynn for node 1, /var/lib/flynn/node-N after.
	StateDir string
	// PortMin and PortMax are 55000-55999 for node 1, the next thousand
	// for each next node.
	PortMin, PortMax int
	// AppNetwork, AppBridge and FirewallChain are flynn-apps, flynnapps0
	// and FLYNN-APPS for node 1, with "-N" after for the others.
	AppNetwork, AppBridge, FirewallChain string
}

// NodeDefaults returns node n's settings.
func NodeDefaults(n int) (Node, error) {
	if n < 1 || n > MaxNode {
		return Node{}, fmt.Errorf("node %d: want 1 to %d", n, MaxNode)
	}
	nd := Node{
		N:             n,
		ExternalIP:    "127.0.0." + strconv.Itoa(n),
		StateDir:      "/var/lib/flynn",
		PortMin:       55000 + (n-1)*1000,
		PortMax:       55999 + (n-1)*1000,
		AppNetwork:    "flynn-apps",
		AppBridge:     "flynnapps0",
		FirewallChain: firewall.DefaultChain,
	}
	if n > 1 {
		suffix := "-" + strconv.Itoa(n)
		nd.StateDir = filepath.Join(nd.StateDir, "node"+suffix)
		nd.AppNetwork += suffix
		nd.AppBridge = "flynnapps" + suffix
		nd.FirewallChain += suffix
	}
	return nd, nil
}
