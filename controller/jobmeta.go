package controller

import "github.com/openflynn/flynn/host"

// Metadata keys on host jobs that belong to an app. The scheduler sets them
// on every job it starts and recognises its jobs by them on any host, so a
// restarted scheduler rebuilds its view from the hosts alone. They are
// flynn-host's keys (host.Meta*), which label log lines and metrics.
const (
	JobMetaAppID     = host.MetaAppID
	JobMetaAppName   = host.MetaAppName
	JobMetaReleaseID = host.MetaReleaseID
	JobMetaType      = host.MetaType
)
