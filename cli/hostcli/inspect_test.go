package hostcli

import "testing"

func TestInspect(t *testing.T) {
	h := newFakeHost(t, fixtureJobs()...)
	res := h.run(t, Env{}, "inspect", "host1-crash")
	if res.code != 0 || res.stderr != "" {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
	golden(t, "inspect", res.stdout)

	res = h.run(t, Env{}, "inspect", "host1-nope")
	if want := "flynn-host: not_found: no job host1-nope\n"; res.code != 1 || res.stderr != want {
		t.Fatalf("inspect of an unknown job: exit %d, stderr %q; want exit 1 and %q", res.code, res.stderr, want)
	}
}
