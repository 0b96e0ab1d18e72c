package dashboard

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/openflynn/flynn/pkg/pgtest"
)

// postgres is the Postgres server of the tests that run a real controller.
var postgres pgtest.Shared

// TestMain fails the package's tests if any goroutine outlives them: the
// live streams' readers must stop with their requests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(postgres.Main(m))
}
