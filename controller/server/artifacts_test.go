package server

import (
	"testing"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// TestCreateArtifactRefusesURLs: an artifact made by POST /artifacts is
// an image reference; a URL would have every host fetch it.
func TestCreateArtifactRefusesURLs(t *testing.T) {
	h := newHarness(t)
	for _, uri := range []string{"http://127.0.0.1:2379/v3/kv/range", "https://example.com/image.tar", "file:///etc/passwd"} {
		err := h.client.CreateArtifact(t.Context(), &controller.Artifact{Type: controller.ArtifactTypeDocker, URI: uri})
		wantCode(t, err, httpjson.CodeValidation, "uri")
	}
	if err := h.client.CreateArtifact(t.Context(), &controller.Artifact{Type: controller.ArtifactTypeDocker, URI: "flynn/stack:latest"}); err != nil {
		t.Fatal(err)
	}
}
