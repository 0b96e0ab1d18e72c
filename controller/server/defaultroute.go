package server

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/postgres"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// An app that is not a system app gets an HTTP route as it is created,
// as a Heroku app gets <app>.herokuapp.com: "<app>.<DefaultRouteDomain>"
// to "<app>-web", the service its web processes register in (see
// controller/hostjob). The route is made in the app's transaction, so an
// app never lacks it and a failed create leaves none behind; after that
// it is an ordinary route, which DELETE removes like any other. A create
// with ?default_route=false makes none; system apps never get one (the
// platform routes its own components as it wants them).

// routeDomainRE is a DNS name without a wildcard: the route schema's
// domain pattern, less its "*.".
var routeDomainRE = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// maxDefaultRouteDomain leaves room, within a domain name's 253
// characters, for the longest app name and its dot.
const maxDefaultRouteDomain = 253 - 31

// validRouteDomain reports whether d (lower case) may be the default
// route domain.
func validRouteDomain(d string) bool {
	return len(d) <= maxDefaultRouteDomain && routeDomainRE.MatchString(d)
}

// CheckDefaultRouteDomain refuses what may not be Options.DefaultRouteDomain
// (after lowering its case): anything but a domain name short enough for
// every app name under it.
func CheckDefaultRouteDomain(d string) error {
	if d != "" && !validRouteDomain(strings.ToLower(d)) {
		return fmt.Errorf("default route domain %q is not a domain name of at most %d characters (no wildcard, no trailing dot)", d, maxDefaultRouteDomain)
	}
	return nil
}

// wantsDefaultRoute reads ?default_route= of POST /apps; absent is true.
func wantsDefaultRoute(r *http.Request) (bool, error) {
	v := r.URL.Query().Get("default_route")
	if v == "" {
		return true, nil
	}
	want, err := strconv.ParseBool(v)
	if err != nil {
		return false, httpjson.ValidationError("default_route", "must be true or false")
	}
	return want, nil
}

// defaultRoute returns the route app gets at creation, or nil when it gets
// none.
func (s *Server) defaultRoute(app *controller.App) *controller.Route {
	if s.opts.DefaultRouteDomain == "" || app.System {
		return nil
	}
	return &controller.Route{
		Type:    controller.RouteTypeHTTP,
		Service: app.Name + "-web",
		Domain:  app.Name + "." + s.opts.DefaultRouteDomain,
	}
}

// defaultRouteTaken says which domain a failed create could not route,
// when that is why it failed, and returns err otherwise.
func defaultRouteTaken(err error, route *controller.Route) error {
	var storeErr *postgres.Error
	if route == nil || !errors.Is(err, postgres.ErrExists) || !errors.As(err, &storeErr) || storeErr.Field != "domain" {
		return err
	}
	return &httpjson.Error{Code: httpjson.CodeObjectExists, Field: "domain", Message: fmt.Sprintf(
		"%s, the domain of the app's default route, has a route already: choose another name, or create the app with ?default_route=false", route.Domain)}
}
