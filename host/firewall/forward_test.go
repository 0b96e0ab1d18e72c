package firewall

import (
	"context"
	"strings"
	"testing"
)

// newDockerTables is a filter table as Docker leaves it: DOCKER-USER
// holding its final RETURN.
func newDockerTables() *fakeTables {
	f := newFakeTables()
	f.chains["DOCKER-USER"] = []string{"-j RETURN"}
	return f
}

func TestInstallForwardFollowsThePeers(t *testing.T) {
	ctx := context.Background()
	f := newDockerTables()
	steps := []struct {
		name  string
		peers []string
		want  string
	}{
		{
			name: "alone", peers: nil,
			want: `-N DOCKER-USER
-N FLYNN-APPS-FWD
-A DOCKER-USER -i flynnapps0 -j FLYNN-APPS-FWD
-A DOCKER-USER -j RETURN
-A FLYNN-APPS-FWD -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
-A INPUT -i lo -j ACCEPT
`,
		},
		{
			// Sorted, once each, IPv4 only (an IPv4-mapped IPv6 address is IPv4).
			name: "two peers", peers: []string{"10.0.0.3", "10.0.0.2", "fd00::2", "::ffff:10.0.0.2"},
			want: `-N DOCKER-USER
-N FLYNN-APPS-FWD
-A DOCKER-USER -i flynnapps0 -j FLYNN-APPS-FWD
-A DOCKER-USER -j RETURN
-A FLYNN-APPS-FWD -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
-A FLYNN-APPS-FWD -d 10.0.0.2/32 -p tcp -m multiport --dports 80,443,3000:3999 -j RETURN
-A FLYNN-APPS-FWD -d 10.0.0.2/32 -p tcp -j REJECT --reject-with tcp-reset
-A FLYNN-APPS-FWD -d 10.0.0.2/32 -j REJECT --reject-with icmp-port-unreachable
-A FLYNN-APPS-FWD -d 10.0.0.3/32 -p tcp -m multiport --dports 80,443,3000:3999 -j RETURN
-A FLYNN-APPS-FWD -d 10.0.0.3/32 -p tcp -j REJECT --reject-with tcp-reset
-A FLYNN-APPS-FWD -d 10.0.0.3/32 -j REJECT --reject-with icmp-port-unreachable
-A INPUT -i lo -j ACCEPT
`,
		},
		{
			name: "one left", peers: []string{"10.0.0.3"},
			want: `-N DOCKER-USER
-N FLYNN-APPS-FWD
-A DOCKER-USER -i flynnapps0 -j FLYNN-APPS-FWD
-A DOCKER-USER -j RETURN
-A FLYNN-APPS-FWD -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
-A FLYNN-APPS-FWD -d 10.0.0.3/32 -p tcp -m multiport --dports 80,443,3000:3999 -j RETURN
-A FLYNN-APPS-FWD -d 10.0.0.3/32 -p tcp -j REJECT --reject-with tcp-reset
-A FLYNN-APPS-FWD -d 10.0.0.3/32 -j REJECT --reject-with icmp-port-unreachable
-A INPUT -i lo -j ACCEPT
`,
		},
	}
	for _, st := range steps {
		for i := range 2 { // twice: the same rules
			if err := InstallForward(ctx, f, Forward{Bridge: "flynnapps0", Peers: st.peers}); err != nil {
				t.Fatalf("%s: InstallForward #%d: %v", st.name, i+1, err)
			}
			if got := f.save(); got != st.want {
				t.Fatalf("%s: rules after InstallForward #%d:\n%s\nwant:\n%s", st.name, i+1, got, st.want)
			}
		}
	}
	// Two nodes on one machine: each its own chain and jump.
	if err := InstallForward(ctx, f, Forward{Bridge: "flynnapps-2", Chain: "FLYNN-APPS-2-FWD", Peers: []string{"10.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	if got := f.save(); !strings.Contains(got, "-A DOCKER-USER -i flynnapps-2 -j FLYNN-APPS-2-FWD\n") ||
		!strings.Contains(got, "-A DOCKER-USER -i flynnapps0 -j FLYNN-APPS-FWD\n") {
		t.Fatalf("second node's rules:\n%s", got)
	}
	for range 2 {
		if err := RemoveForward(ctx, f, Forward{Bridge: "flynnapps0"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := RemoveForward(ctx, f, Forward{Bridge: "flynnapps-2", Chain: "FLYNN-APPS-2-FWD"}); err != nil {
		t.Fatal(err)
	}
	if got, want := f.save(), "-N DOCKER-USER\n-A DOCKER-USER -j RETURN\n-A INPUT -i lo -j ACCEPT\n"; got != want {
		t.Fatalf("rules after RemoveForward:\n%s\nwant:\n%s", got, want)
	}
}

func TestInstallForwardErrors(t *testing.T) {
	tests := []struct {
		name    string
		tables  *fakeTables
		fwd     Forward
		wantErr string
	}{
		{name: "bad peer", tables: newDockerTables(), fwd: Forward{Bridge: "b0", Peers: []string{"10.0.0.300"}}, wantErr: `peer address "10.0.0.300"`},
		{name: "no bridge", tables: newDockerTables(), fwd: Forward{}, wantErr: "bridge interface"},
		{name: "bad ports", tables: newDockerTables(), fwd: Forward{Bridge: "b0", RouterPorts: "x"}, wantErr: "not a port"},
		// Docker without iptables: no DOCKER-USER to hook into.
		{name: "no DOCKER-USER", tables: newFakeTables(), fwd: Forward{Bridge: "b0"}, wantErr: "is Docker managing iptables?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := InstallForward(context.Background(), tt.tables, tt.fwd)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("InstallForward = %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
}

// A restarted daemon keeps the fence it finds until it knows the peers.
func TestEnsureForwardKeepsTheRules(t *testing.T) {
	ctx := context.Background()
	f := newDockerTables()
	fwd := Forward{Bridge: "flynnapps0", Peers: []string{"10.0.0.2"}}
	if err := EnsureForward(ctx, f, fwd); err != nil {
		t.Fatal(err)
	}
	want := "-N DOCKER-USER\n-N FLYNN-APPS-FWD\n-A DOCKER-USER -i flynnapps0 -j FLYNN-APPS-FWD\n-A DOCKER-USER -j RETURN\n" +
		"-A FLYNN-APPS-FWD -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN\n-A INPUT -i lo -j ACCEPT\n"
	if got := f.save(); got != want {
		t.Fatalf("rules after EnsureForward on a bare table:\n%s\nwant:\n%s", got, want)
	}
	if err := InstallForward(ctx, f, fwd); err != nil {
		t.Fatal(err)
	}
	installed := f.save()
	// The jump gone (Docker's chains rebuilt by hand): back, rules kept.
	f.chains["DOCKER-USER"] = []string{"-j RETURN"}
	if err := EnsureForward(ctx, f, Forward{Bridge: "flynnapps0"}); err != nil {
		t.Fatal(err)
	}
	if got := f.save(); got != installed {
		t.Fatalf("rules after EnsureForward:\n%s\nwant them kept:\n%s", got, installed)
	}
}
