package bootstrap

import (
	"strings"
	"testing"
)

// TestJoinLine checks the line that makes another machine a node: this
// node's address and the cluster key, the key in the environment only.
func TestJoinLine(t *testing.T) {
	h := newHarness(t)
	res, err := h.run(t, readTestManifest(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := "FLYNN_JOIN=127.0.0.1 FLYNN_CLUSTER_KEY=the-cluster-key script/install-flynn"; res.Join != want {
		t.Errorf("join line\n got %s\nwant %s", res.Join, want)
	}
	if strings.Contains(res.ClusterAdd, "the-cluster-key") {
		t.Errorf("the cluster-add line carries the cluster key: %s", res.ClusterAdd)
	}
}

func TestJoinRefusals(t *testing.T) {
	tests := []struct {
		name, command, key, want string
	}{
		{"not install-flynn's variables", "script/install-flynn --join 127.0.0.1", "k3y", "must start with FLYNN_JOIN="},
		{"the key in an argument", "FLYNN_JOIN=127.0.0.1 FLYNN_CLUSTER_KEY=k3y script/install-flynn --key k3y", "k3y", "in an argument"},
		{"no key", "FLYNN_JOIN=127.0.0.1 script/install-flynn", "k3y", "FLYNN_CLUSTER_KEY={{cluster_key}}"},
		{"no program", "FLYNN_JOIN=127.0.0.1 FLYNN_CLUSTER_KEY=k3y", "k3y", "no program"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &run{cfg: Config{ClusterKey: tt.key}}
			_, err := (&join{Command: tt.command}).run(t.Context(), r, "join")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
			if r.join != "" {
				t.Errorf("a refused command was kept: %q", r.join)
			}
		})
	}
}

// TestJoinWithoutClusterKey: a run without a cluster key prints no join
// line, since install-flynn would give the new node a key of its own.
func TestJoinWithoutClusterKey(t *testing.T) {
	h := newHarness(t)
	h.cfg.ClusterKey = ""
	res, err := h.run(t, readTestManifest(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.Join != "" || strings.Contains(h.out.String(), "FLYNN_JOIN=") {
		t.Errorf("join line %q printed without a cluster key:\n%s", res.Join, h.out.String())
	}
	if !strings.Contains(h.out.String(), "join join skipped: this run has no cluster key") {
		t.Errorf("the join step does not say it was skipped:\n%s", h.out.String())
	}
}
