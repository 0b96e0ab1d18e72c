package patroni

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/openflynn/flynn/pkg/pgtest"
)

// pg is the Postgres server of the tests that need a plain one.
var pg pgtest.Shared

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(pg.Main(m))
}
