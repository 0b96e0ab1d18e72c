package random

import (
	"regexp"
	"testing"
)

func TestUUID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := UUID()
		if !re.MatchString(id) {
			t.Fatalf("UUID() = %q, not a v4 UUID", id)
		}
		if seen[id] {
			t.Fatalf("UUID() repeated %q", id)
		}
		seen[id] = true
	}
}

func TestHex(t *testing.T) {
	if got := Hex(16); len(got) != 32 {
		t.Errorf("len(Hex(16)) = %d, want 32", len(got))
	}
	if a, b := Hex(16), Hex(16); a == b {
		t.Error("Hex returned the same value twice")
	}
}
