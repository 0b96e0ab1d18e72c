package patroni

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/openflynn/flynn/appliance/postgres"
)

// status is what Patroni's REST API says of its instance (GET /primary
// and its other health endpoints answer with it).
type status struct {
	// State is Postgres's: "running", "starting", "stopped", ….
	State string `json:"state"`
	// Role is "master" or "primary" (by Patroni's version), "replica",
	// "standby_leader", ….
	Role string `json:"role"`
	// Replication lists the standbys streaming from a primary.
	Replication []standby `json:"replication"`
}

// standby is one replica streaming from the primary.
type standby struct {
	// Name is the standby's member name (its application_name).
	Name string `json:"application_name"`
	// State is the WAL sender's: "streaming", "catchup", ….
	State string `json:"state"`
	// SyncState is "sync", "async", "potential" or "quorum".
	SyncState string `json:"sync_state"`
}

// prober asks Patroni's REST API for the instance's role.
type prober struct {
	// url is the REST API's base URL.
	url  string
	http *http.Client
}

// role returns the instance's role: postgres.RolePrimary when Patroni
// holds the leader key and Postgres runs as a primary (GET /primary
// answers 200 only then), postgres.RoleReplica when Postgres runs as a
// replica, and "" otherwise (starting, stopped, demoting). An error means
// the REST API could not be asked.
func (p *prober) role(ctx context.Context) (string, *status, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/primary", nil)
	if err != nil {
		return "", nil, err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return "", nil, fmt.Errorf("patroni REST API: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", nil, fmt.Errorf("patroni REST API: %w", err)
	}
	var st status
	if err := json.Unmarshal(body, &st); err != nil {
		return "", nil, fmt.Errorf("patroni REST API: %s: %w", resp.Status, err)
	}
	running := st.State == "running"
	switch {
	case resp.StatusCode == http.StatusOK && running && slices.Contains([]string{"master", "primary"}, st.Role):
		return postgres.RolePrimary, &st, nil
	case resp.StatusCode == http.StatusServiceUnavailable && running && st.Role == "replica":
		return postgres.RoleReplica, &st, nil
	}
	return "", &st, nil
}

// replicationSummary describes a primary's standbys for the log, or ""
// when there are none.
func (st *status) replicationSummary() string {
	var parts []string
	for _, s := range st.Replication {
		// A new replica's base backup is no standby yet.
		if s.Name == "pg_basebackup" {
			continue
		}
		parts = append(parts, s.Name+" ("+s.State+", "+s.SyncState+")")
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}
