package blobgc

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/openflynn/flynn/pkg/pgtest"
)

// One Postgres server for the package's integration test.
var shared pgtest.Shared

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(shared.Main(m)) }
