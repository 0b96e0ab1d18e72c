package controller

import "time"

// BuildEnv is the cluster's build settings, set once by an operator for
// every build and every job of every app that is not a system app: package
// mirrors (GOPROXY, npm_config_registry, PIP_INDEX_URL, …) and extra CA
// certificates. An app's own env wins over Env, variable by variable.
type BuildEnv struct {
	// Env is added to the environment of builds and app jobs.
	Env map[string]string `json:"env,omitempty"`
	// CACerts is PEM certificates that builds and app jobs trust besides
	// the system's (a private registry's or a proxy's CA). It reaches a
	// job as the variable CACertsEnv; slugbuilder and slugrunner add it to
	// the system's bundle and point the usual variables at the result.
	CACerts   string    `json:"ca_certs,omitempty"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// BuildEnvPatch changes the cluster's build settings; nil fields stay.
type BuildEnvPatch struct {
	// Env sets and unsets variables of BuildEnv.Env.
	Env *EnvPatch `json:"env,omitempty"`
	// CACerts replaces BuildEnv.CACerts when not nil ("" removes them).
	CACerts *string `json:"ca_certs,omitempty"`
}

// CACertsEnv is the variable that carries BuildEnv.CACerts into jobs.
const CACertsEnv = "FLYNN_CA_CERTS"

// ObjectTypeBuildEnv is the object type of the events of changes to the
// cluster's build settings (PATCH /cluster/build-env). They belong to no
// app, their object id is BuildEnvObjectID, and, as with a release, their
// data names the variables of Env but carries RedactedValue for every
// value; a follower reads GET /cluster/build-env for the values.
const ObjectTypeBuildEnv = "build_env"

// BuildEnvObjectID is the object id of every ObjectTypeBuildEnv event: the
// cluster has one BuildEnv.
const BuildEnvObjectID = "cluster"
