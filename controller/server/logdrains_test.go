package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

func TestLogDrains(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	c := h.client
	app, other := h.app(t, "web"), h.app(t, "other")
	events, err := c.StreamEvents(ctx, controller.EventFilter{ObjectTypes: []string{controller.ObjectTypeLogDrain}})
	if err != nil {
		t.Fatal(err)
	}

	syslog, err := c.CreateLogDrain(ctx, app.Name, "syslog+tls://logs.example.com:6514")
	if err != nil {
		t.Fatal(err)
	}
	if syslog.ID == "" || syslog.AppID != app.ID || syslog.CreatedAt.IsZero() || syslog.URL != "syslog+tls://logs.example.com:6514" {
		t.Fatalf("created %+v; want an id, the app's id, the URL and a time", syslog)
	}
	withToken, err := c.CreateLogDrain(ctx, app.ID, "https://user:TOKEN@logs.example.com/bulk/TOKEN")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateLogDrain(ctx, other.ID, "syslog+tcp://10.0.0.1:514"); err != nil {
		t.Fatal(err)
	}
	if list, err := c.AppLogDrains(ctx, app.Name); err != nil || len(list) != 2 || list[0].ID != syslog.ID || list[1].URL != withToken.URL {
		t.Fatalf("AppLogDrains = %+v, %v; want both of web's, the URLs whole", list, err)
	}
	if all, err := c.LogDrains(ctx); err != nil || len(all) != 3 {
		t.Fatalf("LogDrains = %d, %v; want 3", len(all), err)
	}

	errs := []struct {
		name  string
		app   string
		url   string
		code  httpjson.Code
		field string
		msg   string
	}{
		{"heroku's syslog scheme", app.ID, "syslog://logs.example.com:514", httpjson.CodeValidation, "url", "syslog+tcp://"},
		{"plain http", app.ID, "http://logs.example.com/", httpjson.CodeValidation, "url", "in the clear"},
		{"no port", app.ID, "syslog+tcp://logs.example.com", httpjson.CodeValidation, "url", "needs a port"},
		{"bad port", app.ID, "syslog+tcp://logs.example.com:99999", httpjson.CodeValidation, "url", "from 1 to 65535"},
		{"not a url", app.ID, "logs.example.com", httpjson.CodeValidation, "url", "want syslog+tls://"},
		{"empty", app.ID, "", httpjson.CodeValidation, "url", ""},
		{"too long", app.ID, "https://logs.example.com/" + strings.Repeat("x", 3000), httpjson.CodeValidation, "url", ""},
		{"the same URL twice", app.ID, "syslog+tls://logs.example.com:6514", httpjson.CodeObjectExists, "url", ""},
		{"missing app", "nope", "syslog+tls://logs.example.com:6514", httpjson.CodeNotFound, "", ""},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.CreateLogDrain(ctx, tt.app, tt.url)
			wantCode(t, err, tt.code, tt.field)
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want it to say %q", err, tt.msg)
			}
		})
	}
	// What a client that is not ours sees: the API's validation_error
	// (400, as every refused input; see httpjson), naming the field.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.url+"/apps/web/drains", strings.NewReader(`{"url":"ftp://x"}`))
	req.SetBasicAuth("", testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body httpjson.Error
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusBadRequest || body.Code != httpjson.CodeValidation || body.Field != "url" || !strings.Contains(body.Message, `unknown scheme "ftp"`) {
		t.Fatalf("POST a bad URL: %d %+v, %v; want 400 validation_error on url", resp.StatusCode, body, err)
	}

	gone, err := c.DeleteLogDrain(ctx, app.Name, withToken.ID)
	if err != nil || gone.ID != withToken.ID {
		t.Fatalf("DeleteLogDrain = %+v, %v", gone, err)
	}
	wantCode(t, second(c.DeleteLogDrain(ctx, app.ID, withToken.ID)), httpjson.CodeNotFound, "")
	wantCode(t, second(c.DeleteLogDrain(ctx, other.ID, syslog.ID)), httpjson.CodeNotFound, "") // another app's drain
	wantCode(t, second(c.DeleteLogDrain(ctx, app.ID, "not-a-uuid")), httpjson.CodeNotFound, "")

	// Deleting the app deletes its drains.
	if _, err := c.DeleteApp(ctx, app.ID); err != nil {
		t.Fatal(err)
	}
	if all, err := c.LogDrains(ctx); err != nil || len(all) != 1 || all[0].AppID != other.ID {
		t.Fatalf("after deleting web: LogDrains = %+v, %v; want other's only", all, err)
	}

	// The events tell the aggregator what changed, without the tokens.
	want := []string{"create " + syslog.ID, "create " + withToken.ID, "create ", "delete " + withToken.ID, "delete " + syslog.ID}
	for _, w := range want {
		e := nextEvent(t, events)
		if got := e.Op + " " + e.ObjectID; !strings.HasPrefix(got, w) {
			t.Fatalf("event %q, want %q", got, w)
		}
		if strings.Contains(string(e.Data), "TOKEN") {
			t.Fatalf("event %s %s holds the token: %s", e.Op, e.ObjectID, e.Data)
		}
		var d controller.LogDrain
		if err := json.Unmarshal(e.Data, &d); err != nil || d.ID != e.ObjectID {
			t.Fatalf("event data %s: %+v, %v", e.Data, d, err)
		}
	}
}

// TestLogDrainsOfPeople: a person manages the drains of their apps, not a
// system app's, and reads a system app's without their tokens; only the
// system lists every app's.
func TestLogDrainsOfPeople(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	person, _ := h.person(t, "alice")
	sys, own := h.systemApp(t, "router"), h.app(t, "mine")
	sysDrain, err := h.client.CreateLogDrain(ctx, sys.ID, "https://logs.example.com/bulk/TOKEN")
	if err != nil {
		t.Fatal(err)
	}
	mine, err := person.CreateLogDrain(ctx, own.Name, "https://logs.example.com/mine/MY-TOKEN")
	if err != nil {
		t.Fatal(err)
	}

	wantCode(t, second(person.CreateLogDrain(ctx, sys.Name, "syslog+tls://logs.example.com:6514")), httpjson.CodeForbidden, "")
	wantCode(t, second(person.DeleteLogDrain(ctx, sys.Name, sysDrain.ID)), httpjson.CodeForbidden, "")
	wantCode(t, second(person.LogDrains(ctx)), httpjson.CodeForbidden, "")

	list, err := person.AppLogDrains(ctx, sys.Name)
	if err != nil || len(list) != 1 || list[0].URL != "https://logs.example.com/(redacted)" {
		t.Fatalf("a person reads the system app's drains as %+v, %v; want the URL redacted", list, err)
	}
	list, err = person.AppLogDrains(ctx, own.Name)
	if err != nil || len(list) != 1 || list[0].URL != mine.URL {
		t.Fatalf("a person reads their own app's drains as %+v, %v; want the URL whole", list, err)
	}
	if list, err := h.client.AppLogDrains(ctx, sys.Name); err != nil || len(list) != 1 || list[0].URL != sysDrain.URL {
		t.Fatalf("the system reads the system app's drains as %+v, %v; want the URL whole", list, err)
	}
	if _, err := person.DeleteLogDrain(ctx, own.Name, mine.ID); err != nil {
		t.Fatal(err)
	}
}
