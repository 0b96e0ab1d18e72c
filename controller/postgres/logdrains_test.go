package postgres

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/openflynn/flynn/controller"
)

// TestLogDrains walks a drain's life in the store: created, listed by app
// and for all apps, refused twice, deleted; the events carry no token; an
// app's deletion takes its drains with it.
func TestLogDrains(t *testing.T) {
	store := newStore(t)
	ctx := t.Context()
	a, b := &controller.App{Name: "a"}, &controller.App{Name: "b"}
	for _, app := range []*controller.App{a, b} {
		if err := store.Apps.Create(ctx, app); err != nil {
			t.Fatal(err)
		}
	}
	d1 := &controller.LogDrain{AppID: "a", URL: "https://logs.test/bulk/TOKEN"}
	if err := store.LogDrains.Create(ctx, d1); err != nil {
		t.Fatal(err)
	}
	if d1.ID == "" || d1.AppID != a.ID || d1.CreatedAt.IsZero() {
		t.Fatalf("created %+v; want an id, the app's id and a time", d1)
	}
	d2 := &controller.LogDrain{AppID: b.ID, URL: "syslog+tls://logs.test:6514"}
	if err := store.LogDrains.Create(ctx, d2); err != nil {
		t.Fatal(err)
	}
	// The same URL is another drain for another app, but not twice for one.
	if err := store.LogDrains.Create(ctx, &controller.LogDrain{AppID: b.ID, URL: d1.URL}); err != nil {
		t.Fatal(err)
	}
	var storeErr *Error
	err := store.LogDrains.Create(ctx, &controller.LogDrain{AppID: a.ID, URL: d1.URL})
	if !errors.Is(err, ErrExists) || !errors.As(err, &storeErr) || storeErr.Field != "url" {
		t.Fatalf("a second drain to the same URL: %v; want ErrExists on url", err)
	}
	if err := store.LogDrains.Create(ctx, &controller.LogDrain{AppID: "nope", URL: d1.URL}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a drain of a missing app: %v; want ErrNotFound", err)
	}

	list, next, err := store.LogDrains.List(ctx, a.ID, Page{})
	if err != nil || next != "" || len(list) != 1 || list[0].ID != d1.ID || list[0].URL != d1.URL {
		t.Fatalf("a's drains = %+v, %q, %v; want d1", list, next, err)
	}
	all, next, err := store.LogDrains.List(ctx, "", Page{Limit: 2})
	if err != nil || next == "" || len(all) != 2 {
		t.Fatalf("every drain, page 1 = %d, %q, %v; want 2 and a cursor", len(all), next, err)
	}
	rest, next, err := store.LogDrains.List(ctx, "", Page{Limit: 2, Cursor: next})
	if err != nil || next != "" || len(rest) != 1 {
		t.Fatalf("every drain, page 2 = %d, %q, %v; want 1 and no cursor", len(rest), next, err)
	}

	for _, id := range []string{"not-a-uuid", d2.ID} {
		if _, err := store.LogDrains.Delete(ctx, a.ID, id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("delete %s of a: %v; want ErrNotFound", id, err)
		}
	}
	gone, err := store.LogDrains.Delete(ctx, "a", d1.ID)
	if err != nil || gone.ID != d1.ID || gone.URL != d1.URL {
		t.Fatalf("delete = %+v, %v", gone, err)
	}
	if found := secretsIn(t, store.Pool, "TOKEN"); len(found) > 0 {
		t.Errorf("events hold a drain's token:\n%s", strings.Join(found, "\n"))
	}

	// Deleting an app deletes its drains, each with its event.
	if _, err := store.Apps.Delete(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if all, _, err := store.LogDrains.List(ctx, "", Page{}); err != nil || len(all) != 0 {
		t.Fatalf("after deleting b: %+v, %v; want no drains", all, err)
	}
	events, err := store.Events.List(ctx, EventQuery{AppID: b.ID, ObjectTypes: []string{controller.ObjectTypeLogDrain}})
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, e := range events {
		ops = append(ops, e.Op)
	}
	if got := strings.Join(ops, ","); got != "create,create,delete,delete" {
		t.Fatalf("b's drain events = %s; want two creates and two deletes", got)
	}
}

// TestLogDrainsPerApp: an app has at most controller.MaxLogDrainsPerApp
// drains.
func TestLogDrainsPerApp(t *testing.T) {
	store := newStore(t)
	ctx := t.Context()
	if err := store.Apps.Create(ctx, &controller.App{Name: "busy"}); err != nil {
		t.Fatal(err)
	}
	for i := range controller.MaxLogDrainsPerApp {
		if err := store.LogDrains.Create(ctx, &controller.LogDrain{AppID: "busy", URL: fmt.Sprintf("syslog+tcp://logs.test:%d", 1000+i)}); err != nil {
			t.Fatal(err)
		}
	}
	err := store.LogDrains.Create(ctx, &controller.LogDrain{AppID: "busy", URL: "syslog+tcp://logs.test:999"})
	if !errors.Is(err, ErrPrecondition) || !strings.Contains(err.Error(), "remove one") {
		t.Fatalf("one drain too many: %v; want ErrPrecondition", err)
	}
}
