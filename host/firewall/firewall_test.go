package firewall

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// fakeTables keeps the filter table of INPUT and user chains in memory and
// answers the commands Install, Remove and their Forward counterparts run,
// as iptables would.
type fakeTables struct {
	chains map[string][]string // "INPUT" and user chains → rules ("-i br0 -j X")
	calls  []string
	fail   string // a binary that is "not installed"
}

func newFakeTables() *fakeTables {
	return &fakeTables{chains: map[string][]string{"INPUT": {"-i lo -j ACCEPT"}}}
}

// exitErr is an *exec.ExitError with status 1, as iptables returns it.
func exitErr() error { return exitStatus(1) }

// exitStatus is an *exec.ExitError with status code.
func exitStatus(code int) error {
	err := exec.Command("sh", "-c", fmt.Sprintf("exit %d", code)).Run()
	return fmt.Errorf("fake: %w", err)
}

// missingTarget reports whether the rule jumps to a user chain that does
// not exist, which iptables refuses with status 2 ("Chain 'X' does not
// exist"), even to check or delete the rule.
func (f *fakeTables) missingTarget(rule []string) bool {
	i := slices.Index(rule, "-j")
	if i < 0 || i+1 >= len(rule) {
		return false
	}
	switch target := rule[i+1]; target {
	case "ACCEPT", "DROP", "REJECT", "RETURN":
		return false
	default:
		_, ok := f.chains[target]
		return !ok
	}
}

func (f *fakeTables) Run(_ context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	f.calls = append(f.calls, strings.TrimSpace(name+" "+strings.Join(args, " ")))
	if name == f.fail {
		return nil, fmt.Errorf("%s: %w", name, exec.ErrNotFound)
	}
	args = slices.DeleteFunc(slices.Clone(args), func(a string) bool { return a == "-w" })
	switch name {
	case "iptables-restore":
		if !slices.Contains(args, "--noflush") {
			return nil, errors.New("fake: restore without --noflush would flush the whole table")
		}
		for _, line := range strings.Split(string(stdin), "\n") {
			switch {
			case strings.HasPrefix(line, ":"):
				chain, _, _ := strings.Cut(line[1:], " ")
				f.chains[chain] = []string{}
			case strings.HasPrefix(line, "-A "):
				chain, rule, _ := strings.Cut(line[3:], " ")
				if _, ok := f.chains[chain]; !ok {
					return nil, exitErr()
				}
				f.chains[chain] = append(f.chains[chain], rule)
			}
		}
		return nil, nil
	case "iptables":
		op, chain := args[0], args[1]
		switch op {
		case "-C", "-D":
			if f.missingTarget(args[2:]) {
				return nil, exitStatus(2)
			}
			rule := strings.Join(args[2:], " ")
			i := slices.Index(f.chains[chain], rule)
			if i < 0 {
				return nil, exitErr()
			}
			if op == "-D" {
				f.chains[chain] = slices.Delete(f.chains[chain], i, i+1)
			}
			return nil, nil
		case "-I":
			if args[2] != "1" {
				return nil, errors.New("fake: insert not at the top")
			}
			if _, ok := f.chains[chain]; !ok {
				return nil, exitErr() // "No chain/target/match by that name."
			}
			f.chains[chain] = slices.Insert(f.chains[chain], 0, strings.Join(args[3:], " "))
			return nil, nil
		case "-S":
			rules, ok := f.chains[chain]
			if !ok {
				return nil, exitErr()
			}
			var out strings.Builder
			for _, r := range rules {
				fmt.Fprintf(&out, "-A %s %s\n", chain, r)
			}
			return []byte(out.String()), nil
		case "-F", "-X":
			rules, ok := f.chains[chain]
			if !ok || (op == "-X" && len(rules) > 0) {
				return nil, exitErr()
			}
			if op == "-F" {
				f.chains[chain] = []string{}
			} else {
				delete(f.chains, chain)
			}
			return nil, nil
		}
	}
	return nil, fmt.Errorf("fake: unexpected %s %v", name, args)
}

// save prints the rules as `iptables -S` would.
func (f *fakeTables) save() string {
	var b strings.Builder
	names := make([]string, 0, len(f.chains))
	for c := range f.chains {
		names = append(names, c)
	}
	slices.Sort(names)
	for _, c := range names {
		if c != "INPUT" {
			fmt.Fprintf(&b, "-N %s\n", c)
		}
	}
	for _, c := range names {
		for _, r := range f.chains[c] {
			fmt.Fprintf(&b, "-A %s %s\n", c, r)
		}
	}
	return b.String()
}

func TestInstallIsIdempotentAndRemoveUndoes(t *testing.T) {
	ctx := context.Background()
	f := newFakeTables()
	rules := Rules{Bridge: "flynnapps0"}
	want := `-N FLYNN-APPS
-A FLYNN-APPS -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FLYNN-APPS -p tcp -m multiport --dports 80,443,3000:3999 -j ACCEPT
-A FLYNN-APPS -p tcp -j REJECT --reject-with tcp-reset
-A FLYNN-APPS -j REJECT --reject-with icmp-port-unreachable
-A INPUT -i flynnapps0 -j FLYNN-APPS
-A INPUT -i lo -j ACCEPT
`
	for i := range 3 {
		if err := Install(ctx, f, rules); err != nil {
			t.Fatalf("Install #%d: %v", i+1, err)
		}
		if got := f.save(); got != want {
			t.Fatalf("rules after Install #%d:\n%s\nwant:\n%s", i+1, got, want)
		}
	}
	// A chain someone edited by hand is put back as it should be.
	f.chains["FLYNN-APPS"] = append(f.chains["FLYNN-APPS"][:1], "-j ACCEPT")
	if err := Install(ctx, f, rules); err != nil {
		t.Fatal(err)
	}
	if got := f.save(); got != want {
		t.Fatalf("rules after repairing Install:\n%s\nwant:\n%s", got, want)
	}
	for range 2 {
		if err := Remove(ctx, f, rules); err != nil {
			t.Fatalf("Remove: %v", err)
		}
		if got, want := f.save(), "-A INPUT -i lo -j ACCEPT\n"; got != want {
			t.Fatalf("rules after Remove:\n%s\nwant:\n%s", got, want)
		}
	}
}

func TestInstallOptions(t *testing.T) {
	tests := []struct {
		name    string
		rules   Rules
		want    []string // lines that must be in the rules
		wantErr string
	}{
		{
			name:  "own chain and ports",
			rules: Rules{Bridge: "fat1234", Chain: "FLYNN-T1234", RouterPorts: "8080, 9000-9009"},
			want:  []string{"-A INPUT -i fat1234 -j FLYNN-T1234", "-A FLYNN-T1234 -p tcp -m multiport --dports 8080,9000:9009 -j ACCEPT"},
		},
		{name: "no bridge", rules: Rules{}, wantErr: "bridge interface"},
		{name: "bridge name too long", rules: Rules{Bridge: "a-very-long-bridge0"}, wantErr: "bridge interface"},
		{name: "bad port", rules: Rules{Bridge: "b0", RouterPorts: "80,http"}, wantErr: `"http" is not a port`},
		{name: "empty range", rules: Rules{Bridge: "b0", RouterPorts: "90:80"}, wantErr: "is empty"},
		{name: "too many ports", rules: Rules{Bridge: "b0", RouterPorts: "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15:16"}, wantErr: "at most 15"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeTables()
			err := Install(context.Background(), f, tt.rules)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Install = %v, want an error with %q", err, tt.wantErr)
				}
				if len(f.calls) != 0 {
					t.Fatalf("ran %v for invalid rules", f.calls)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := f.save()
			for _, line := range tt.want {
				if !strings.Contains(got, line+"\n") {
					t.Errorf("rules lack %q:\n%s", line, got)
				}
			}
		})
	}
}

func TestInstallWithoutIptables(t *testing.T) {
	f := newFakeTables()
	f.fail = "iptables-restore"
	err := Install(context.Background(), f, Rules{Bridge: "b0"})
	if !errors.Is(err, exec.ErrNotFound) {
		t.Fatalf("Install without iptables = %v, want exec.ErrNotFound", err)
	}
}

func TestExecRunsAndReportsExitCode(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	out, err := Exec{}.Run(context.Background(), []byte("hi"), sh, "-c", "cat; exit 3")
	if ExitCode(err) != 3 || !strings.Contains(string(out), "hi") {
		t.Fatalf("Run = %q, %v (exit %d); want output hi and exit 3", out, err, ExitCode(err))
	}
	if ExitCode(errors.New("other")) != -1 {
		t.Fatal("ExitCode of a non-exit error is not -1")
	}
}
