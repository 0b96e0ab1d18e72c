// Package stacks names the stacks apps build and run on: a Debian release
// with its language runtimes, as a pair of images (the build image and
// the run image). It is the one list the image builder, gitreceive, the
// buildpacks' messages and the CLI share, so that `flynn stack set` only
// accepts a stack the cluster builds, and a push that asks for a Python or
// Node.js version is sent to the stack that has it.
package stacks

import (
	"slices"
	"strconv"
	"strings"
)

// Stack is one stack.
type Stack struct {
	// Name is what apps select and what buildpacks see as STACK unless
	// the app's env sets STACK.
	Name string
	// Suite is the Debian release the stack's images are made from.
	Suite string
	// Debian is the Debian version, for people ("12").
	Debian string
	// Python and Node are the major.minor versions of the stack's
	// python3 and nodejs packages. Debian keeps them within a release.
	Python, Node string
	// ImageSuffix is added to the keys of the stack's images ("stack",
	// "build", "slugbuilder", "slugrunner"): "" for the default stack.
	ImageSuffix string
}

// Default is the stack of an app that selected none.
const Default = "flynn-bookworm"

// all is every stack, the default first.
var all = []Stack{
	{Name: "flynn-bookworm", Suite: "bookworm", Debian: "12", Python: "3.11", Node: "18.20"},
	{Name: "flynn-trixie", Suite: "trixie", Debian: "13", Python: "3.13", Node: "20.19", ImageSuffix: "-trixie"},
}

// All returns every stack, the default first.
func All() []Stack { return slices.Clone(all) }

// Lookup returns the stack named name.
func Lookup(name string) (Stack, bool) {
	for _, s := range all {
		if s.Name == name {
			return s, true
		}
	}
	return Stack{}, false
}

// Names lists the stacks' names, the default first.
func Names() []string {
	names := make([]string, len(all))
	for i, s := range all {
		names[i] = s.Name
	}
	return names
}

// MajorMinor reduces a version ("3.12.4", "v20.1", "3.12") to its major and
// minor numbers, or reports that it is not a version.
func MajorMinor(v string) (major, minor int, ok bool) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	parts := strings.Split(v, ".")
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || major < 0 || minor < 0 {
		return 0, 0, false
	}
	return major, minor, true
}
