package controller

// Metadata keys on host jobs that belong to an app. The scheduler sets them
// on every job it starts and recognises its jobs by them on any host, so a
// restarted scheduler rebuilds its view from the hosts alone.
const (
	JobMetaAppID     = "flynn.app-id"
	JobMetaAppName   = "flynn.app-name"
	JobMetaReleaseID = "flynn.release-id"
	JobMetaType      = "flynn.process-type"
)
