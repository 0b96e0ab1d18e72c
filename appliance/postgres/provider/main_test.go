package provider

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/openflynn/flynn/pkg/pgtest"
)

// One Postgres server for the package's tests that need no password
// checks; TestIsolation starts its own.
var pg pgtest.Shared

func TestMain(m *testing.M) { goleak.VerifyTestMain(pg.Main(m)) }
