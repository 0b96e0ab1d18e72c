package cli

import (
	"reflect"
	"strings"
	"testing"
)

func TestInterspersed(t *testing.T) {
	app := newApp(&runner{env: &Env{}})
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"flags first already", "flynn -a x scale -n web=3", "flynn -a x scale -n -- web=3"},
		{"flag after argument", "flynn scale web=3 --no-wait", "flynn scale --no-wait -- web=3"},
		{"value flag after argument", "flynn route add http example.com --path /api --sticky", "flynn route add http --path /api --sticky -- example.com"},
		{"flag with =", "flynn route add http example.com --path=/api", "flynn route add http --path=/api -- example.com"},
		{"global flags stay", "flynn -c prod -a x route list --json", "flynn -c prod -a x route list --json"},
		{"double dash keeps the rest", "flynn env set -a x -- -A=1 --json", "flynn env set -a x -- -A=1 --json"},
		{"run keeps the command's flags", "flynn run -d ls -l --all", "flynn run -d ls -l --all"},
		{"unknown command untouched", "flynn help scale", "flynn help scale"},
		{"completion untouched", "flynn scale web=1 --generate-bash-completion", "flynn scale web=1 --generate-bash-completion"},
		{"no arguments", "flynn", "flynn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := interspersed(app, strings.Fields(tt.in))
			if want := strings.Fields(tt.want); !reflect.DeepEqual(got, want) {
				t.Fatalf("interspersed(%q) = %q, want %q", tt.in, got, want)
			}
		})
	}
}
