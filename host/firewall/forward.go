package firewall

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// ForwardSuffix ends the name of a node's forward chain: the chain of its
// INPUT rules with it ("FLYNN-APPS-FWD").
const ForwardSuffix = "-FWD"

// Forward fences the app jobs of one node off the other nodes of its
// cluster. INPUT (Rules) sees only what app jobs send to the node itself;
// what they send to another node's address leaves through FORWARD, where
// Docker lets operators filter in DOCKER-USER before its own rules
// accept it. InstallForward jumps from there to a chain of the node's own
// that lets replies and the router's ports through to the peers and
// rejects the rest:
//
//	DOCKER-USER -i <bridge> ─► FLYNN-APPS-FWD: ESTABLISHED,RELATED              ─► RETURN
//	                                           to a peer, tcp to the router's ports ─► RETURN
//	                                           to a peer, tcp                       ─► REJECT tcp-reset
//	                                           to a peer, anything else             ─► REJECT
//
// RETURN hands the packet back to Docker's rules, as if the chain were not
// there: it opens nothing Docker closes. Replies must pass: a router on
// another node proxies to the node's app jobs, and their answers leave
// through this bridge towards that node.
type Forward struct {
	// Bridge is the app network's bridge interface. Required.
	Bridge string
	// Chain holds the rules. Default DefaultChain + ForwardSuffix.
	Chain string
	// RouterPorts are the TCP ports app jobs may reach on other nodes,
	// as Rules.RouterPorts. Default DefaultRouterPorts.
	RouterPorts string
	// Peers are the IPv4 addresses of the cluster's other nodes. IPv6
	// addresses are left out: the app network has no IPv6 route.
	Peers []string
}

func (f Forward) withDefaults() (Forward, error) {
	if f.Chain == "" {
		f.Chain = DefaultChain + ForwardSuffix
	}
	r, err := Rules{Bridge: f.Bridge, Chain: f.Chain, RouterPorts: f.RouterPorts}.withDefaults()
	if err != nil {
		return f, err
	}
	f.Bridge, f.Chain, f.RouterPorts = r.Bridge, r.Chain, r.RouterPorts
	peers := make([]string, 0, len(f.Peers))
	for _, p := range f.Peers {
		a, err := netip.ParseAddr(strings.TrimSpace(p))
		if err != nil {
			return f, fmt.Errorf("peer address %q: %w", p, err)
		}
		if a = a.Unmap(); a.Is4() {
			peers = append(peers, a.String())
		}
	}
	slices.Sort(peers)
	f.Peers = slices.Compact(peers)
	return f, nil
}

// restoreInput declares and fills the chain in one commit, as
// Rules.restoreInput does.
func (f Forward) restoreInput() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "*filter\n:%s - [0:0]\n", f.Chain)
	for _, rule := range f.chainRules() {
		fmt.Fprintf(&b, "-A %s %s\n", f.Chain, strings.Join(rule, " "))
	}
	b.WriteString("COMMIT\n")
	return b.Bytes()
}

// chainRules are the chain's rules, in order, without "-A CHAIN".
func (f Forward) chainRules() [][]string {
	out := [][]string{{"-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "RETURN"}}
	for _, p := range f.Peers {
		dst := p + "/32"
		out = append(out,
			[]string{"-d", dst, "-p", "tcp", "-m", "multiport", "--dports", f.RouterPorts, "-j", "RETURN"},
			[]string{"-d", dst, "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"},
			[]string{"-d", dst, "-j", "REJECT", "--reject-with", "icmp-port-unreachable"},
		)
	}
	return out
}

// jump is DOCKER-USER's rule sending the bridge's packets to the chain.
func (f Forward) jump() []string {
	return []string{"DOCKER-USER", "-i", f.Bridge, "-j", f.Chain}
}

// InstallForward writes the chain for f's peers, replacing its content
// atomically, and adds DOCKER-USER's jump to it, first in DOCKER-USER,
// unless it is there. It is idempotent; calling it again with other peers
// updates the chain in place. DOCKER-USER must exist (Docker creates it
// when it manages iptables).
func InstallForward(ctx context.Context, run Runner, f Forward) error {
	f, err := f.withDefaults()
	if err != nil {
		return err
	}
	if _, err := run.Run(ctx, f.restoreInput(), "iptables-restore", "-w", "--noflush"); err != nil {
		return fmt.Errorf("write chain %s: %w", f.Chain, err)
	}
	return ensureJump(ctx, run, f.jump())
}

// EnsureForward makes sure the chain and DOCKER-USER's jump to it exist,
// creating an empty chain when there is none but leaving the rules of one
// that exists as they are: a restarted daemon keeps the fence the one
// before it left until it learns the peers again (InstallForward).
func EnsureForward(ctx context.Context, run Runner, f Forward) error {
	f.Peers = nil
	f, err := f.withDefaults()
	if err != nil {
		return err
	}
	exists, err := hasChain(ctx, run, f.Chain)
	if err != nil {
		return err
	}
	if !exists {
		if _, err := run.Run(ctx, f.restoreInput(), "iptables-restore", "-w", "--noflush"); err != nil {
			return fmt.Errorf("write chain %s: %w", f.Chain, err)
		}
	}
	return ensureJump(ctx, run, f.jump())
}

// hasChain reports whether the filter table has chain.
func hasChain(ctx context.Context, run Runner, chain string) (bool, error) {
	_, err := run.Run(ctx, nil, "iptables", "-w", "-S", chain)
	switch {
	case err == nil:
		return true, nil
	case ExitCode(err) == 1: // "No chain/target/match by that name."
		return false, nil
	default:
		return false, fmt.Errorf("look for chain %s: %w", chain, err)
	}
}

// ensureJump inserts jump (a rule, chain first) first in its chain unless
// it is there. First: a rule before it that accepts (an operator's "accept
// everything from private addresses") must not open the fence.
func ensureJump(ctx context.Context, run Runner, jump []string) error {
	exists, err := hasRule(ctx, run, jump)
	if err != nil || exists {
		return err
	}
	args := append([]string{"-w", "-I", jump[0], "1"}, jump[1:]...)
	if _, err := run.Run(ctx, nil, "iptables", args...); err != nil {
		hint := ""
		if jump[0] == "DOCKER-USER" {
			hint = " (is Docker managing iptables?)"
		}
		return fmt.Errorf("add %s jump to %s%s: %w", jump[0], jump[len(jump)-1], hint, err)
	}
	return nil
}

// RemoveForward deletes DOCKER-USER's jumps to the chain and the chain;
// rules that are not there are not an error. Like Remove, it is for tests
// and for an operator taking a node away.
func RemoveForward(ctx context.Context, run Runner, f Forward) error {
	f.Peers = nil
	f, err := f.withDefaults()
	if err != nil {
		return err
	}
	return removeChain(ctx, run, f.jump())
}

// hasRule reports whether rule (chain first) exists.
func hasRule(ctx context.Context, run Runner, rule []string) (bool, error) {
	_, err := run.Run(ctx, nil, "iptables", append([]string{"-w", "-C"}, rule...)...)
	switch {
	case err == nil:
		return true, nil
	case ExitCode(err) == 1: // "Bad rule (does a matching rule exist in that chain?)"
		return false, nil
	default:
		return false, fmt.Errorf("check %s jump to %s: %w", rule[0], rule[len(rule)-1], err)
	}
}

// removeChain deletes every copy of jump (a rule jumping to the chain its
// last word names), then flushes and deletes that chain. Without the
// chain there is no jump to it (iptables refuses one), and nothing to do.
func removeChain(ctx context.Context, run Runner, jump []string) error {
	chain := jump[len(jump)-1]
	if exists, err := hasChain(ctx, run, chain); err != nil || !exists {
		return err
	}
	for range 10 { // a jump added twice by hand goes too
		exists, err := hasRule(ctx, run, jump)
		if err != nil {
			return err
		}
		if !exists {
			break
		}
		if _, err := run.Run(ctx, nil, "iptables", append([]string{"-w", "-D"}, jump...)...); err != nil {
			return fmt.Errorf("delete %s jump to %s: %w", jump[0], chain, err)
		}
	}
	for _, op := range []string{"-F", "-X"} {
		if _, err := run.Run(ctx, nil, "iptables", "-w", op, chain); err != nil && ExitCode(err) != 1 {
			return fmt.Errorf("iptables %s %s: %w", op, chain, err)
		}
	}
	return nil
}
