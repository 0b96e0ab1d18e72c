package server

import (
	"errors"
	"maps"
	"slices"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/hostjob"
	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// probeHost and probeArtifact stand in for the host and image a job will
// have: checkRunnable validates the rest of what the job is made of.
const probeHost = "probe"

var probeArtifact = controller.Artifact{Type: controller.ArtifactTypeDocker, URI: "flynn/probe"}

// checkRunnable refuses a release with a process no host would run. It
// builds each process's host job as the scheduler will (controller/hostjob)
// and validates it as flynn-host does, so that a release the schema lets
// through but every host refuses (a check path that is not a URL path, a
// memory limit below the host's least, a port twice, a service name
// discoverd refuses, a NUL in an env value) fails when it is made rather
// than on every host, over and over, later.
func checkRunnable(appName string, rel *controller.Release) error {
	art := probeArtifact
	for _, typ := range slices.Sorted(maps.Keys(rel.Processes)) {
		job := hostjob.ForProcess(probeHost, appName, rel, &art, typ)
		if err := job.Validate(); err != nil {
			return runnableError("processes."+typ, err)
		}
	}
	return nil
}

// checkOneOffRunnable is checkRunnable for a one-off job.
func checkOneOffRunnable(spec *JobSpec) error {
	if err := spec.HostJob(probeHost).Validate(); err != nil {
		return runnableError("", err)
	}
	return nil
}

// runnableError names the field flynn-host refused, under prefix.
func runnableError(prefix string, err error) error {
	var fe *host.FieldError
	if !errors.As(err, &fe) {
		return httpjson.ValidationError(prefix, "no host would run it: %v", err)
	}
	field := fe.Field
	if prefix != "" {
		field = prefix + " (job " + fe.Field + ")"
	}
	return httpjson.ValidationError(field, "no host would run it: %s", fe.Message)
}
