package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openflynn/flynn/discoverd/discoverdtest"
	"github.com/openflynn/flynn/pkg/httpjson"
)

func TestBadInput(t *testing.T) {
	srv := discoverdtest.New(t, discoverdtest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.Client().AddService(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		method    string
		path      string
		body      string
		wantCode  httpjson.Code
		wantField string
	}{
		{"malformed json", "PUT", "/services/web/instances/a", `{"addr":`, httpjson.CodeValidation, ""},
		{"not json", "PUT", "/services/web/instances/a", `hello`, httpjson.CodeValidation, ""},
		{"empty body", "PUT", "/services/web/instances/a", ``, httpjson.CodeValidation, ""},
		{"missing addr", "PUT", "/services/web/instances/a", `{"proto":"http"}`, httpjson.CodeValidation, "addr"},
		{"unparsable addr", "PUT", "/services/web/instances/a", `{"addr":"nowhere"}`, httpjson.CodeValidation, "addr"},
		{"addr port out of range", "PUT", "/services/web/instances/a", `{"addr":"127.0.0.1:99999"}`, httpjson.CodeValidation, "addr"},
		{"addr wrong type", "PUT", "/services/web/instances/a", `{"addr":42}`, httpjson.CodeValidation, "addr"},
		{"unknown field", "PUT", "/services/web/instances/a", `{"addr":"127.0.0.1:1","colour":"red"}`, httpjson.CodeValidation, "colour"},
		{"id mismatch", "PUT", "/services/web/instances/a", `{"id":"b","addr":"127.0.0.1:1"}`, httpjson.CodeValidation, "id"},
		{"bad ttl", "PUT", "/services/web/instances/a?ttl=forever", `{"addr":"127.0.0.1:1"}`, httpjson.CodeValidation, "ttl"},
		{"ttl too long", "PUT", "/services/web/instances/a?ttl=100000", `{"addr":"127.0.0.1:1"}`, httpjson.CodeValidation, "ttl"},
		{"huge body", "PUT", "/services/web/instances/a", `{"addr":"127.0.0.1:1","meta":{"x":"` + strings.Repeat("x", 100<<10) + `"}}`, httpjson.CodeRequestTooLarge, ""},
		{"uppercase service", "PUT", "/services/Web", ``, httpjson.CodeValidation, "service"},
		{"service with underscore", "PUT", "/services/my_app/instances/a", `{"addr":"127.0.0.1:1"}`, httpjson.CodeValidation, "service"},
		{"service too long", "PUT", "/services/" + strings.Repeat("a", 64), ``, httpjson.CodeValidation, "service"},
		{"register in unknown service", "PUT", "/services/nope/instances/a", `{"addr":"127.0.0.1:1"}`, httpjson.CodeNotFound, ""},
		{"list unknown service", "GET", "/services/nope/instances", ``, httpjson.CodeNotFound, ""},
		{"leader of unknown service", "GET", "/services/nope/leader", ``, httpjson.CodeNotFound, ""},
		{"deregister unknown instance", "DELETE", "/services/web/instances/zzz", ``, httpjson.CodeNotFound, ""},
		{"remove unknown service", "DELETE", "/services/nope", ``, httpjson.CodeNotFound, ""},
		{"meta without data", "PUT", "/services/web/meta", `{"index":0}`, httpjson.CodeValidation, "data"},
		{"unknown endpoint", "GET", "/nothing/here", ``, httpjson.CodeNotFound, ""},
		{"wrong method", "POST", "/services/web", ``, httpjson.CodeMethodNotAllowed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(ctx, tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			var e httpjson.Error
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("status %d, body is not a JSON error: %s", resp.StatusCode, body)
			}
			if e.Code != tt.wantCode || e.Field != tt.wantField || resp.StatusCode != tt.wantCode.Status() {
				t.Errorf("got %d %s field %q (%s), want %d %s field %q", resp.StatusCode, e.Code, e.Field, e.Message, tt.wantCode.Status(), tt.wantCode, tt.wantField)
			}
		})
	}
	// Nothing of the above left an instance behind.
	list, err := srv.Client().Instances(ctx, "web")
	if err != nil || len(list) != 0 {
		t.Errorf("after bad input: instances = %v, %v; want none", list, err)
	}
}
