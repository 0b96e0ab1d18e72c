package controller

import "time"

// A cluster backup (GET /backup) is a tar archive of every database of the
// Postgres appliance and the data of every other provider's resources
// (appliance/postgres/backup/archive). Its status and
// headers go out before the archive is made, so a failure midway ends the
// body early and sets the trailer BackupErrorTrailer; an archive cut short
// lacks its manifest, which every reader refuses.
const BackupErrorTrailer = "Flynn-Backup-Error"

// RestoreEvent is one line of the answer to POST /restore, which is
// newline-delimited JSON (application/x-ndjson): progress while the
// restore runs, then a Report or an Error, last.
type RestoreEvent struct {
	// Progress says what the restore is doing.
	Progress string `json:"progress,omitempty"`
	// Report ends a restore that succeeded.
	Report *RestoreReport `json:"report,omitempty"`
	// Error ends a restore that failed, saying why and what was undone.
	Error string `json:"error,omitempty"`
}

// RestoreReport is what a restore brought back.
type RestoreReport struct {
	// BackupCreatedAt is when the backup was made.
	BackupCreatedAt time.Time `json:"backup_created_at"`
	// Apps names the apps restored.
	Apps []string `json:"apps"`
	// Databases names the apps' databases restored.
	Databases []string `json:"databases"`
	// Roles names the database roles created (the apps' own).
	Roles []string `json:"roles"`
	// Counts of the other objects restored.
	Releases    int `json:"releases"`
	Formations  int `json:"formations"`
	Routes      int `json:"routes"`
	LogDrains   int `json:"log_drains"`
	Resources   int `json:"resources"`
	Keys        int `json:"keys"`
	APIKeys     int `json:"api_keys"`
	BlobsAdded  int `json:"blobs_added"`
	BlobsKept   int `json:"blobs_kept"`
	Deployments int `json:"deployments"`
	// Notes says what was left out or needs a hand.
	Notes []string `json:"notes,omitempty"`
}
