// Package firewall keeps app jobs away from the node's own services. App
// jobs run on a Docker bridge; every packet they send to the node itself
// (not through it to other hosts, which Docker's masquerading handles)
// enters the INPUT chain from that bridge. Install jumps from there to a
// chain of its own that lets through only what answers a connection the
// node opened and new TCP connections to the router's ports, and rejects
// the rest at once (tcp-reset, icmp-port-unreachable) so that a client
// fails fast instead of timing out:
//
//	INPUT -i <bridge> ─► FLYNN-APPS: ESTABLISHED,RELATED      ─► ACCEPT
//	                                 tcp to the router's ports ─► ACCEPT
//	                                 tcp                       ─► REJECT tcp-reset
//	                                 anything else             ─► REJECT
//
// The rules are written with the iptables binaries (iptables-nft or
// iptables-legacy, whichever the node's alternatives name, as Docker does)
// through a Runner, so tests can read them without root.
//
// In a cluster of several nodes, app jobs must not reach the other nodes'
// services either; that traffic leaves through FORWARD, not INPUT, and
// InstallForward fences it (see Forward) from DOCKER-USER, the one chain
// of Docker's meant for its operators. Docker's other chains (DOCKER,
// DOCKER-ISOLATION-…, the nat table) are not touched. The app network is
// IPv4 only, so there are no ip6tables rules.
package firewall

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// DefaultChain is the chain the rules live in.
const DefaultChain = "FLYNN-APPS"

// DefaultRouterPorts are the router's ports on a node: HTTP, HTTPS and the
// range of TCP routes.
const DefaultRouterPorts = "80,443,3000:3999"

// Runner runs one of the iptables binaries ("iptables" or
// "iptables-restore") with args, stdin as its input, and returns its
// combined output. An exit status other than 0 is an error wrapping
// *exec.ExitError (see ExitCode).
type Runner interface {
	Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error)
}

// Exec runs the binaries found in $PATH.
type Exec struct{}

var _ Runner = Exec{}

// Run runs the binary.
func (Exec) Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// ExitCode returns the exit status in err, or -1 when the command did not
// run to an exit (not found, killed).
func ExitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// Rules are the firewall of one app bridge.
type Rules struct {
	// Bridge is the app network's bridge interface. Required.
	Bridge string
	// Chain is the chain holding the rules. Default DefaultChain.
	Chain string
	// RouterPorts are the TCP ports app jobs may reach on the node:
	// numbers and ranges ("3000:3999" or "3000-3999"), comma-separated, at
	// most 15 ports (a range counts two). Default DefaultRouterPorts.
	RouterPorts string
}

func (r Rules) withDefaults() (Rules, error) {
	if r.Chain == "" {
		r.Chain = DefaultChain
	}
	if r.RouterPorts == "" {
		r.RouterPorts = DefaultRouterPorts
	}
	if r.Bridge == "" || len(r.Bridge) > 15 || strings.ContainsAny(r.Bridge, " /") {
		return r, fmt.Errorf("bridge interface %q: want a name of 1-15 characters", r.Bridge)
	}
	if len(r.Chain) > 28 || strings.ContainsAny(r.Chain, " \t\n") {
		return r, fmt.Errorf("chain %q: want a name of at most 28 characters without spaces", r.Chain)
	}
	ports, err := ParsePorts(r.RouterPorts)
	if err != nil {
		return r, err
	}
	r.RouterPorts = ports
	return r, nil
}

// ParsePorts checks a list of ports and ranges and returns it as
// iptables' multiport match takes it ("80,443,3000:3999").
func ParsePorts(s string) (string, error) {
	var out []string
	slots := 0
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		lo, hi, isRange := strings.Cut(strings.ReplaceAll(p, "-", ":"), ":")
		a, err := parsePort(lo)
		if err != nil {
			return "", fmt.Errorf("router ports %q: %w", s, err)
		}
		if !isRange {
			out = append(out, strconv.Itoa(a))
			slots++
			continue
		}
		b, err := parsePort(hi)
		if err != nil {
			return "", fmt.Errorf("router ports %q: %w", s, err)
		}
		if a > b {
			return "", fmt.Errorf("router ports %q: range %d:%d is empty", s, a, b)
		}
		out = append(out, strconv.Itoa(a)+":"+strconv.Itoa(b))
		slots += 2
	}
	if slots > 15 {
		return "", fmt.Errorf("router ports %q: at most 15 ports (a range counts two)", s)
	}
	return strings.Join(out, ","), nil
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port (1-65535)", s)
	}
	return n, nil
}

// restoreInput is what iptables-restore reads: the chain declared (which,
// with --noflush, creates it or empties it) and filled in one commit, so
// the rules are replaced atomically and never seen half-written.
func (r Rules) restoreInput() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "*filter\n:%s - [0:0]\n", r.Chain)
	for _, rule := range r.chainRules() {
		fmt.Fprintf(&b, "-A %s %s\n", r.Chain, strings.Join(rule, " "))
	}
	b.WriteString("COMMIT\n")
	return b.Bytes()
}

// chainRules are the chain's rules, in order, without "-A CHAIN".
func (r Rules) chainRules() [][]string {
	return [][]string{
		{"-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"},
		{"-p", "tcp", "-m", "multiport", "--dports", r.RouterPorts, "-j", "ACCEPT"},
		{"-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"},
		{"-j", "REJECT", "--reject-with", "icmp-port-unreachable"},
	}
}

// jump is INPUT's rule sending the bridge's packets to the chain.
func (r Rules) jump() []string {
	return []string{"INPUT", "-i", r.Bridge, "-j", r.Chain}
}

// Install writes the rules, replacing the chain's content when it exists,
// and adds INPUT's jump to it, first in INPUT, unless it is there. It is
// idempotent: installing twice leaves the same rules.
func Install(ctx context.Context, run Runner, rules Rules) error {
	r, err := rules.withDefaults()
	if err != nil {
		return err
	}
	if _, err := run.Run(ctx, r.restoreInput(), "iptables-restore", "-w", "--noflush"); err != nil {
		return fmt.Errorf("write chain %s: %w", r.Chain, err)
	}
	return ensureJump(ctx, run, r.jump())
}

// Remove deletes INPUT's jumps to the chain and the chain itself. The
// daemon never calls it (jobs outlive it and stay behind the firewall);
// it is for tests and for an operator taking a node out of a cluster.
// Removing rules that are not there is not an error.
func Remove(ctx context.Context, run Runner, rules Rules) error {
	r, err := rules.withDefaults()
	if err != nil {
		return err
	}
	return removeChain(ctx, run, r.jump())
}
