package daemon

import (
	"slices"
	"strings"
	"testing"
)

// TestDockerfileImages: the images a build would pull when missing are
// those FROM and COPY --from name, not its own stages or scratch.
func TestDockerfileImages(t *testing.T) {
	tests := []struct {
		name       string
		dockerfile string
		want       []string
		wantErr    string
	}{
		{name: "one", dockerfile: "FROM flynn/base:1\nRUN true\n", want: []string{"flynn/base:1"}},
		{name: "platform flag and lower case", dockerfile: "from --platform=linux/amd64 img AS b\n", want: []string{"img"}},
		{name: "stages", dockerfile: "FROM a AS build\nRUN x\nFROM build\nCOPY --from=build /x /x\nCOPY --from=0 /y /y\nFROM scratch\n", want: []string{"a"}},
		{name: "copy from an image", dockerfile: "FROM a\nCOPY --from=tools:1 /bin/t /t\n", want: []string{"a", "tools:1"}},
		{name: "continued line", dockerfile: "FROM \\\n  a\n", want: []string{"a"}},
		{name: "escape directive", dockerfile: "# escape=`\nFROM `\n  a\n", want: []string{"a"}},
		{name: "comments", dockerfile: "# FROM nope\nFROM a\n", want: []string{"a"}},
		{name: "argument's default", dockerfile: "ARG B=flynn/stack\nFROM ${B}\nARG C=ignored\n", want: []string{"flynn/stack"}},
		{name: "quoted default, plain form", dockerfile: "ARG B=\"x:1\"\nFROM $B\n", want: []string{"x:1"}},
		{name: "argument without a default", dockerfile: "ARG B\nFROM ${B}\n", wantErr: "give the ARG a default"},
		{name: "argument after FROM", dockerfile: "FROM a\nARG B=x\nFROM ${B}\n", wantErr: "name the image"},
		{name: "none", dockerfile: "", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dockerfileImages(tt.dockerfile)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
