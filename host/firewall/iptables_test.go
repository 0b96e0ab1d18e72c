package firewall

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/openflynn/flynn/pkg/random"
	"github.com/openflynn/flynn/pkg/testdeps"
)

// realIPTables returns the real binaries, or stops the test where they
// cannot be run (not root, no iptables, no Docker chains).
func realIPTables(t *testing.T) Exec {
	t.Helper()
	testdeps.Short(t)
	testdeps.LookPath(t, "iptables-restore")
	if os.Geteuid() != 0 {
		testdeps.Missing(t, "root (for iptables)", errors.New("not root"))
	}
	if ok, err := hasChain(context.Background(), Exec{}, "DOCKER-USER"); err != nil || !ok {
		testdeps.Missing(t, "Docker's DOCKER-USER chain", err)
	}
	return Exec{}
}

// TestForwardOnRealIPTables writes, rewrites and removes a forward chain
// with the real binaries. The peers are never reached (nothing runs on
// the bridge): the rules are what is checked.
func TestForwardOnRealIPTables(t *testing.T) {
	run := realIPTables(t)
	ctx := context.Background()
	id := random.Hex(3)
	f := Forward{Bridge: "fwt" + id + "0", Chain: "FLYNN-FWT" + strings.ToUpper(id)}
	t.Cleanup(func() {
		if err := RemoveForward(ctx, run, f); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	rules := func() string {
		out, err := run.Run(ctx, nil, "iptables", "-w", "-S", f.Chain)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	jumps := func() int {
		out, err := run.Run(ctx, nil, "iptables", "-w", "-S", "DOCKER-USER")
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(string(out), "-A DOCKER-USER -i "+f.Bridge+" -j "+f.Chain+"\n")
	}

	if err := EnsureForward(ctx, run, f); err != nil {
		t.Fatal(err)
	}
	f.Peers = []string{"192.0.2.20", "192.0.2.10"}
	for range 2 {
		if err := InstallForward(ctx, run, f); err != nil {
			t.Fatal(err)
		}
	}
	want := "-N " + f.Chain + "\n" +
		"-A " + f.Chain + " -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN\n" +
		"-A " + f.Chain + " -d 192.0.2.10/32 -p tcp -m multiport --dports 80,443,3000:3999 -j RETURN\n" +
		"-A " + f.Chain + " -d 192.0.2.10/32 -p tcp -j REJECT --reject-with tcp-reset\n" +
		"-A " + f.Chain + " -d 192.0.2.10/32 -j REJECT --reject-with icmp-port-unreachable\n" +
		"-A " + f.Chain + " -d 192.0.2.20/32 -p tcp -m multiport --dports 80,443,3000:3999 -j RETURN\n" +
		"-A " + f.Chain + " -d 192.0.2.20/32 -p tcp -j REJECT --reject-with tcp-reset\n" +
		"-A " + f.Chain + " -d 192.0.2.20/32 -j REJECT --reject-with icmp-port-unreachable\n"
	if got := rules(); got != want {
		t.Fatalf("iptables -S %s:\n%s\nwant:\n%s", f.Chain, got, want)
	}
	// A restarted daemon keeps them until it knows the peers.
	if err := EnsureForward(ctx, run, f); err != nil {
		t.Fatal(err)
	}
	if got := rules(); got != want {
		t.Fatalf("rules after EnsureForward:\n%s\nwant them kept:\n%s", got, want)
	}
	if n := jumps(); n != 1 {
		t.Fatalf("%d DOCKER-USER jumps, want 1", n)
	}
	if err := RemoveForward(ctx, run, f); err != nil {
		t.Fatal(err)
	}
	if ok, err := hasChain(ctx, run, f.Chain); err != nil || ok {
		t.Fatalf("chain left after RemoveForward (%v)", err)
	}
	if n := jumps(); n != 0 {
		t.Fatalf("%d DOCKER-USER jumps left after RemoveForward", n)
	}
}
