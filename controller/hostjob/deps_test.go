package hostjob

import (
	"go/build"
	"strings"
	"testing"
)

// hostjob is a leaf: bootstrap, the scheduler and the controller's job
// runner all import it, so it must not pull any of them (or anything
// heavy) in. It may import the standard library and these only.
var allowedImports = map[string]bool{
	"github.com/openflynn/flynn/controller": true,
	"github.com/openflynn/flynn/host":       true,
	"github.com/openflynn/flynn/pkg/random": true,
}

func TestImportsStayLeaf(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if strings.Contains(strings.Split(imp, "/")[0], ".") && !allowedImports[imp] {
			t.Errorf("hostjob imports %s; only the standard library and %v may be imported", imp, allowedImports)
		}
	}
}
