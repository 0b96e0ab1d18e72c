package server

import (
	"testing"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// TestAppStack: an app's stack is one the cluster builds, kept until
// changed, and "" goes back to the default.
func TestAppStack(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	app := &controller.App{Name: "stacked", Stack: "flynn-trixie"}
	if err := h.client.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	if app.Stack != "flynn-trixie" {
		t.Fatalf("created with stack %q", app.Stack)
	}
	wantCode(t, h.client.CreateApp(ctx, &controller.App{Name: "unstacked", Stack: "heroku-24"}), httpjson.CodeValidation, "stack")

	strategy := controller.StrategyAllAtOnce
	got, err := h.client.UpdateApp(ctx, app.Name, controller.AppUpdate{Strategy: &strategy})
	if err != nil || got.Stack != "flynn-trixie" {
		t.Fatalf("an update without a stack changed it: %+v, %v", got, err)
	}
	bad := "cedar-14"
	_, err = h.client.UpdateApp(ctx, app.Name, controller.AppUpdate{Stack: &bad})
	wantCode(t, err, httpjson.CodeValidation, "stack")
	def := ""
	if got, err = h.client.UpdateApp(ctx, app.Name, controller.AppUpdate{Stack: &def}); err != nil || got.Stack != "" {
		t.Fatalf("reset to the default: %+v, %v", got, err)
	}
	if got, err = h.client.App(ctx, app.Name); err != nil || got.Stack != "" {
		t.Fatalf("read back: %+v, %v", got, err)
	}
}
