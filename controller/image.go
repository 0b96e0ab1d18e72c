package controller

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Meta keys of a docker-archive artifact made from an uploaded image
// (POST /apps/:id/images): what the image's config says, every value a
// string, lists as JSON arrays of strings.
const (
	// ImageMetaID is the image's id: the digest of its config, "sha256:…".
	ImageMetaID = "image_id"
	// ImageMetaName is the name the image was saved under ("redis:7"),
	// when it had one.
	ImageMetaName = "image"
	// ImageMetaExposedPorts lists the image's exposed ports as Docker
	// writes them ("6379/tcp"), in port order: a JSON array.
	ImageMetaExposedPorts = "exposed_ports"
	// ImageMetaEntrypoint and ImageMetaCmd are the image's entrypoint
	// and command: JSON arrays, absent when the image has none.
	ImageMetaEntrypoint = "entrypoint"
	ImageMetaCmd        = "cmd"
	// ImageMetaUser is the user the image runs as ("" is root, which a
	// host never runs an app's job as).
	ImageMetaUser = "user"
	// ImageMetaWorkingDir is the image's working directory.
	ImageMetaWorkingDir = "workdir"
)

// ImageTCPPorts returns the TCP ports an image artifact exposes, in
// order, from its ImageMetaExposedPorts.
func ImageTCPPorts(art *Artifact) ([]int, error) {
	raw, ok := art.Meta[ImageMetaExposedPorts]
	if !ok || raw == "" {
		return nil, nil
	}
	var exposed []string
	if err := json.Unmarshal([]byte(raw), &exposed); err != nil {
		return nil, fmt.Errorf("artifact %s: meta %s is not a JSON list: %w", art.ID, ImageMetaExposedPorts, err)
	}
	var ports []int
	for _, e := range exposed {
		num, proto, _ := strings.Cut(e, "/")
		if proto != "" && proto != "tcp" {
			continue
		}
		// A range ("7000-7010") exposes its first port first.
		num, _, _ = strings.Cut(num, "-")
		if n, err := strconv.Atoi(num); err == nil && n > 0 && n <= 65535 {
			ports = append(ports, n)
		}
	}
	slices.Sort(ports)
	return slices.Compact(ports), nil
}

// ImageProcesses returns the process types of a release of an image
// artifact of app appName. Without procfile, there is one, "web", which
// runs the image's entrypoint and command as they are. A procfile (type
// → command, as a Procfile has them) replaces that: each type's command
// is run by /bin/sh -c, as the image's command (its entrypoint, when it
// has one, runs that).
//
// A web type listens on the image's first exposed TCP port (the port's
// Target: the host publishes it on the port it allocates), or on $PORT as
// a buildpack app does when the image exposes none. It is registered in
// discoverd as "<app>-web", which the app's routes point at; tcp makes
// the port a plain TCP one, for a service that is no HTTP server (Redis,
// SMTP), reached through a TCP route of that service.
func ImageProcesses(appName string, art *Artifact, procfile map[string]string, tcp bool) (map[string]ProcessType, error) {
	ports, err := ImageTCPPorts(art)
	if err != nil {
		return nil, err
	}
	web := Port{Proto: "http"}
	if tcp {
		web.Proto = "tcp"
	}
	if len(ports) > 0 {
		web.Target = ports[0]
	}
	withPort := func(pt ProcessType) ProcessType {
		pt.Ports = []Port{web}
		pt.Service = appName + "-web"
		return pt
	}
	if procfile == nil {
		return map[string]ProcessType{"web": withPort(ProcessType{})}, nil
	}
	out := map[string]ProcessType{}
	for _, typ := range slices.Sorted(maps.Keys(procfile)) {
		pt := ProcessType{Cmd: []string{"/bin/sh", "-c", procfile[typ]}}
		if typ == "web" {
			pt = withPort(pt)
		}
		out[typ] = pt
	}
	return out, nil
}
