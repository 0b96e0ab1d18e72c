package server

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/openflynn/flynn/pkg/pgtest"
)

// postgres is the Postgres server of the tests of the postgres backend.
var postgres pgtest.Shared

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(postgres.Main(m))
}
