package drain_test

import (
	"context"
	"fmt"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/logaggregator"
	"github.com/openflynn/flynn/logaggregator/drain"
)

// The log aggregator's use of a Manager: every app's drains from the
// controller (again whenever a log_drain event says they changed), every
// line it keeps, and the drops told in the app's own log.
func ExampleManager() {
	var m *drain.Manager
	m = drain.NewManager(drain.Options{
		OnDrop: func(appID, drainID string, n uint64) {
			// Called outside Send, so it may send a line itself.
			m.Send(&logaggregator.Line{
				Time: time.Now(), AppID: appID, ProcessType: "flynn", Stream: logaggregator.StreamStderr,
				Data: fmt.Sprintf("Error L10 (output buffer overflow): drain %s dropped %d messages\n", drainID, n),
			})
		},
	})
	drains := []controller.LogDrain{{ID: "8f0e…", AppID: "5c1a…", URL: "syslog+tls://logs.example.com:6514"}}
	if err := m.Sync(drains); err != nil {
		fmt.Println(err) // a drain the controller should not have taken
	}
	m.Send(&logaggregator.Line{Time: time.Now(), AppID: "5c1a…", AppName: "example", ProcessType: "web",
		JobID: "host1-…", Stream: logaggregator.StreamStdout, Data: "GET / 200\n"})
	for _, st := range m.Stats() {
		fmt.Println(st.DrainID, st.Sent, st.Dropped)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Close(ctx); err != nil {
		fmt.Println(err) // lines the receivers did not get in time
	}
}
