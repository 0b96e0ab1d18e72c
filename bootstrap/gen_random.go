package bootstrap

import (
	"context"
	"fmt"

	"github.com/openflynn/flynn/pkg/random"
)

// genRandom makes a secret ({{STEP}}): Value when it expands to something
// (the controller key is the cluster key when the host has one, since the
// scheduler uses one key for the controller, the hosts and discoverd),
// otherwise Bytes random bytes in hex.
type genRandom struct {
	stepHead
	// Bytes of randomness; default 16 (32 hex digits).
	Bytes int `json:"bytes,omitempty"`
	// Value, when it expands to a non-empty string, is used as is.
	Value string `json:"value,omitempty"`
}

func (g *genRandom) run(_ context.Context, r *run, id string) (string, error) {
	if g.Value != "" {
		r.setValues(id, map[string]string{"": g.Value})
		return "given", nil
	}
	n := g.Bytes
	if n == 0 {
		n = 16
	}
	if n < 8 || n > 256 {
		return "", fmt.Errorf("bytes = %d: want 8-256", n)
	}
	r.setValues(id, map[string]string{"": random.Hex(n)})
	return "generated", nil
}
