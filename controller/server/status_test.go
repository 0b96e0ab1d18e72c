package server

import (
	"net/http"
	"testing"

	"github.com/openflynn/flynn/pkg/version"
)

// TestStatus: GET /status says the controller's version and default route
// domain, to any key but not without one.
func TestStatus(t *testing.T) {
	tests := []struct {
		name   string
		domain string
	}{
		{"with a default route domain", "apps.example.com"},
		{"without", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarnessWith(t, func(o *Options) { o.DefaultRouteDomain = tt.domain })
			person, _ := h.person(t, "bob")
			st, err := person.Status(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if st.Version != version.String() || st.Version == "" || st.DefaultRouteDomain != tt.domain {
				t.Errorf("status = %+v, want version %q and domain %q", st, version.String(), tt.domain)
			}
			if status, _ := rawGet(t, h.url+"/status", ""); status != http.StatusUnauthorized {
				t.Errorf("without a key: status %d, want 401", status)
			}
		})
	}
}
