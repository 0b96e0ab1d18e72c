package daemon

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/openflynn/flynn/host"
)

func jobFile(state, id string) string { return filepath.Join(jobsDir(state), id+".json") }

// persistLocked writes the job's record (atomically: temp file and rename).
// Called with d.mu held; a failure is logged, since the container's labels
// still let the next daemon rebuild a running job.
func (d *Daemon) persistLocked(j *job) {
	b, err := json.Marshal(&j.active)
	if err == nil {
		path := jobFile(d.cfg.StateDir, j.id)
		tmp := path + ".tmp"
		if err = os.WriteFile(tmp, b, 0o640); err == nil {
			err = os.Rename(tmp, path)
		}
	}
	if err != nil {
		d.log.Error("persist job", "job_id", j.id, "err", err)
	}
}

// loadRecords reads every job record in the state directory.
func loadRecords(state string) (map[string]*host.ActiveJob, error) {
	ents, err := os.ReadDir(jobsDir(state))
	if err != nil {
		return nil, fmt.Errorf("read job records: %w", err)
	}
	out := map[string]*host.ActiveJob{}
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(jobsDir(state), e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read job record: %w", err)
		}
		var a host.ActiveJob
		if err := json.Unmarshal(b, &a); err != nil || a.Job == nil || a.Job.ID != id {
			continue // a torn or foreign file: the container labels still speak for the job
		}
		out[id] = &a
	}
	return out, nil
}
