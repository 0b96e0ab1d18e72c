package history

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: Run
// and its reads must all have returned once Run has.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
