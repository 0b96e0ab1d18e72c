package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/openflynn/flynn/appliance/postgres/backup"
	"github.com/openflynn/flynn/appliance/postgres/backup/archive"
	"github.com/openflynn/flynn/blobstore/signed"
	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/postgres"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// Cluster backup and restore: the controller fronts the Postgres
// appliance's own backup API (appliance/postgres/backup), which it reaches
// at the root of the URL of the provider named "postgres", with that
// URL's key (http://:KEY@postgres-api.discoverd/databases → …/backup):
//
//	GET  /backup   → 200 application/x-tar, streamed: every database of the
//	                 appliance (the controller's, the blobstore's slugs,
//	                 every app's) and its app roles, then the data of every
//	                 resource of the other providers (backupresources.go).
//	                 A failure midway ends the body early with the trailer
//	                 controller.BackupErrorTrailer.
//	POST /restore  body: a backup → 412 when this cluster has apps of its own;
//	                 the appliance's refusals (400 not a complete backup,
//	                 409 databases in the way) as they are, nothing changed;
//	                 else 200 application/x-ndjson of controller.RestoreEvent:
//	                 the appliance restores its databases and leaves the
//	                 old controller database in a scratch database, which
//	                 the controller imports (postgres.Store.Import, its
//	                 slug URLs signed again with this cluster's key) and
//	                 drops; then the other providers make their resources
//	                 again. The imported formations' events set the
//	                 scheduler going, the routes' the router.
//
// Only system requests may do either: a backup holds every secret of the
// cluster (the system apps' env, the controller key among them, every
// database), and a restore brings back API keys. They are registered
// apart from routes.go's router because their bodies are streams of any
// length: withBackupRoutes puts them in front of it.

// backupProvider is the provider whose appliance makes backups.
const backupProvider = "postgres"

// withBackupRoutes serves GET /backup and POST /restore, and everything
// else with next. Both are counted in the request metrics under their own
// routes, not as unmatched.
func (s *Server) withBackupRoutes(next http.Handler) http.Handler {
	r := s.requests.Router()
	backup := s.authenticate(s.plainHandler(s.backup))
	r.Handler(http.MethodGet, "/backup", backup)
	r.Handler(http.MethodHead, "/backup", backup) // the mux's GET pattern takes HEAD too
	r.Handler(http.MethodPost, "/restore", s.authenticate(s.plainHandler(s.restore)))
	mux := http.NewServeMux()
	mux.Handle("GET /backup", r)
	mux.Handle("POST /restore", r)
	mux.Handle("/", next)
	return mux
}

// plainHandler adapts an endpoint to net/http, with handle's error
// handling.
func (s *Server) plainHandler(h handlerFunc) http.Handler {
	handle := s.handle(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handle(w, r, nil) })
}

var errBackupNeedsClusterKey = httpjson.Errorf(httpjson.CodeForbidden,
	"a cluster backup holds every secret of the cluster, and a restore brings back API keys: both need the cluster key (flynn --system, with $FLYNN_CLUSTER_KEY or --cluster-key-file)")

// backupAPI returns the root URL of the appliance's backup API, with its
// key.
func (s *Server) backupAPI(ctx context.Context) (*url.URL, error) {
	p, err := s.store.Providers.Get(ctx, backupProvider)
	if errors.Is(err, postgres.ErrNotFound) {
		return nil, httpjson.Errorf(httpjson.CodeServiceUnavailable, "this cluster has no %q provider, whose appliance makes backups", backupProvider)
	}
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(p.URL)
	if err != nil || u.Host == "" {
		return nil, httpjson.Errorf(httpjson.CodeServiceUnavailable, "provider %s has an unusable URL", p.Name)
	}
	u.Path, u.RawPath, u.RawQuery, u.Fragment = "", "", "", ""
	return u, nil
}

// streamClient is the providers' client without its timeout: a backup or
// a restore streams for as long as it takes, bounded by its request's
// context.
func (s *Server) streamClient() *http.Client {
	hc := *s.opts.HTTPClient
	hc.Timeout = 0
	return &hc
}

// applianceError turns the appliance's refusal into the API error to pass
// on: its own, but for the appliance refusing the controller's key, which
// is the cluster's fault and not the caller's.
func applianceError(resp *http.Response) error {
	err := httpjson.ReadError(resp)
	var apiErr *httpjson.Error
	if errors.As(err, &apiErr) && (apiErr.Code == httpjson.CodeUnauthorized || apiErr.Code == httpjson.CodeForbidden) {
		return httpjson.Errorf(httpjson.CodeServiceUnavailable, "the Postgres appliance refused the %s provider's key: %s", backupProvider, apiErr.Message)
	}
	return err
}

func (s *Server) backup(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	ctx := r.Context()
	if !callerOf(ctx).system {
		return errBackupNeedsClusterKey
	}
	base, err := s.backupAPI(ctx)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.JoinPath("backup").String(), nil)
	if err != nil {
		return err
	}
	start := time.Now()
	resp, err := s.streamClient().Do(req)
	if err != nil {
		return &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Retry: true, Message: fmt.Sprintf("the Postgres appliance does not answer: %v", withoutURL(err))}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return applianceError(resp)
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="flynn-backup-%s.tar"`, start.UTC().Format("20060102T150405Z")))
	w.Header().Set("Trailer", controller.BackupErrorTrailer)
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	// The appliance's archive is copied entry by entry, verified as it
	// goes; the other providers' resources follow, then the manifest of
	// it all.
	aw, err := archive.NewWriter(w, start)
	var msg string
	var m *archive.Manifest
	if err == nil {
		if _, m, err = archive.Read(resp.Body, aw.Forward()); err != nil {
			msg = resp.Trailer.Get(backup.ErrorTrailer)
			if msg == "" {
				msg = fmt.Sprintf("the backup stream from the Postgres appliance broke: %v", withoutURL(err))
			}
		}
	}
	resources := 0
	if err == nil {
		if resources, err = s.backupResources(ctx, aw); err != nil {
			msg = fmt.Sprintf("backing up %v", err)
		}
	}
	if err == nil {
		err = aw.Close(m.Databases)
	}
	if err != nil && ctx.Err() != nil {
		return nil // the client went away
	}
	if msg == "" && err != nil {
		msg = err.Error()
	}
	if msg != "" {
		w.Header().Set(controller.BackupErrorTrailer, msg)
		s.logger.Error("backup failed", "err", msg)
		return nil
	}
	s.logger.Info("backup sent", "entries", len(m.Entries), "resources", resources, "duration", time.Since(start))
	return nil
}

func (s *Server) restore(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	ctx := r.Context()
	if !callerOf(ctx).system {
		return errBackupNeedsClusterKey
	}
	// A restore brings apps back with their ids, names and routes; a
	// cluster with apps of its own would be a merge, which it is not.
	if own, err := s.peoplesApps(ctx); err != nil {
		return err
	} else if len(own) > 0 {
		return httpjson.Errorf(httpjson.CodePreconditionFailed,
			"this cluster has apps of its own (%s): restore onto a fresh cluster, or delete them first", joinMax(own, 5))
	}
	base, err := s.backupAPI(ctx)
	if err != nil {
		return err
	}
	// The archive goes to the appliance and, through a pipe, to a second
	// reader here that keeps the other providers' resources.
	keep, err := os.MkdirTemp("", "flynn-restore-resources-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(keep)
	pr, pw := io.Pipe()
	defer pw.CloseWithError(errors.New("the restore ended"))
	keptc := make(chan keptResources, 1)
	go func() {
		k := keptResources{dir: archive.NewDir(keep)}
		_, _, k.err = archive.Read(pr, resourceEntries{k.dir})
		_, _ = io.Copy(io.Discard, pr) // past a refused archive, so that the appliance gets all of it
		keptc <- k
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base.JoinPath("restore").String(), &teeToPipe{r: r.Body, pw: pw})
	if err != nil {
		return err
	}
	req.ContentLength = r.ContentLength
	req.Header.Set("Content-Type", "application/x-tar")
	start := time.Now()
	resp, err := s.streamClient().Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &httpjson.Error{Code: httpjson.CodeServiceUnavailable, Message: fmt.Sprintf("the Postgres appliance did not take the backup: %v", withoutURL(err))}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return applianceError(resp)
	}

	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	send := func(ev controller.RestoreEvent) {
		_ = enc.Encode(ev)
		_ = rc.Flush()
	}
	fail := func(msg string) error {
		s.logger.Error("restore failed", "err", msg)
		send(controller.RestoreEvent{Error: msg})
		return nil
	}
	dec := json.NewDecoder(resp.Body)
	var res *backup.Result
	for res == nil {
		var ev backup.Event
		if err := dec.Decode(&ev); err != nil {
			return fail(fmt.Sprintf("the Postgres appliance stopped answering in the middle of the restore (%v); what it did is unknown", err))
		}
		switch {
		case ev.Error != nil:
			return fail(ev.Error.Message)
		case ev.Result != nil:
			res = ev.Result
		case ev.Progress != "":
			send(controller.RestoreEvent{Progress: ev.Progress})
		}
	}
	report := &controller.RestoreReport{
		BackupCreatedAt: res.CreatedAt, Apps: []string{}, Databases: res.Databases, Roles: res.Roles,
		BlobsAdded: res.BlobsAdded, BlobsKept: res.BlobsKept, Notes: res.Skipped,
	}
	if res.ControllerDatabase == "" {
		report.Notes = append(report.Notes, "the backup holds no controller database: no apps were brought back")
	} else {
		send(controller.RestoreEvent{Progress: "importing apps, releases, routes and keys"})
		imp, err := s.store.Import(ctx, res.ControllerDatabase, postgres.ImportOptions{BlobURL: s.resignBlobURL})
		if err != nil {
			var storeErr *postgres.Error
			msg := err.Error()
			if errors.As(err, &storeErr) {
				msg = storeErr.Message
			}
			return fail(fmt.Sprintf("the databases were restored, but importing the controller's state failed: %s (its copy is in database %s)", msg, res.ControllerDatabase))
		}
		report.Apps = imp.Apps
		report.Releases, report.Formations, report.Routes, report.LogDrains, report.Resources = imp.Releases, imp.Formations, imp.Routes, imp.LogDrains, imp.Resources
		report.Keys, report.APIKeys, report.Deployments = imp.Keys, imp.APIKeys, imp.Deployments
		report.Notes = append(report.Notes, imp.Skipped...)
		_ = pw.CloseWithError(errors.New("the appliance has read the backup"))
		kept := <-keptc
		report.Notes = append(report.Notes, s.restoreResources(ctx, kept, func(msg string) { send(controller.RestoreEvent{Progress: msg}) })...)
	}
	s.logger.Info("restore done", "apps", len(report.Apps), "databases", len(report.Databases), "duration", time.Since(start))
	send(controller.RestoreEvent{Report: report})
	return nil
}

// resignBlobURL signs a blob URL (a release's SLUG_URL, an uploaded
// image's artifact) again with this cluster's blobstore key, which the
// old cluster's signature does not match; any other value is kept.
func (s *Server) resignBlobURL(value string) string {
	key := s.opts.BlobstoreKey
	if key == "" {
		key = s.opts.AuthKey
	}
	if key == "" {
		return value // a development controller without keys
	}
	resigned, ok, err := signed.Resign(value, key, http.MethodGet)
	if err != nil || !ok {
		return value // not a signed URL, or not one the blobstore could open anyway
	}
	return resigned
}

// peoplesApps returns the names of the apps that are not system apps.
func (s *Server) peoplesApps(ctx context.Context) ([]string, error) {
	var names []string
	p := postgres.Page{Limit: postgres.MaxPageSize}
	for {
		apps, next, err := s.store.Apps.List(ctx, p)
		if err != nil {
			return nil, err
		}
		for _, a := range apps {
			if !a.System {
				names = append(names, a.Name)
			}
		}
		if next == "" {
			return names, nil
		}
		p.Cursor = next
	}
}

// joinMax joins the first n names, saying how many more there are.
func joinMax(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}

// withoutURL keeps the appliance's URL, and its key, out of an error.
func withoutURL(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}
