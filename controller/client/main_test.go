package client_test

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/openflynn/flynn/controller/postgres"
	"github.com/openflynn/flynn/controller/server"
	"github.com/openflynn/flynn/pkg/pgtest"
	"github.com/openflynn/flynn/pkg/testdeps"
)

// TestMain leaves the examples out when they cannot have PostgreSQL: an
// example cannot skip itself, so the decision pgtest.Require takes for a
// test is taken here for the whole binary (-short or no PostgreSQL
// installed: skipped locally; no PostgreSQL in CI: a failure). It then
// fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	flag.Parse()
	why := ""
	if _, err := pgtest.BinDir(); err != nil {
		why = fmt.Sprintf("integration dependency postgresql server is missing: %v", err)
	} else if testing.Short() && !testdeps.InCI() {
		why = "-short"
	}
	if why != "" {
		if testdeps.InCI() {
			fmt.Fprintf(os.Stderr, "the examples need PostgreSQL (CI=true, so this fails instead of skipping): %s\n", why)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "skipping the examples: %s\n", why)
		if err := flag.Set("test.skip", "^Example"); err != nil {
			log.Fatal(err)
		}
	}
	goleak.VerifyTestMain(m)
}

// exampleController serves a controller on a throwaway PostgreSQL (the
// examples need no cluster); stop ends it all.
func exampleController() (url string, stop func()) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pg, err := pgtest.Start(ctx)
	if err != nil {
		log.Fatal(err)
	}
	dbURL, err := pg.CreateDatabase(ctx)
	if err != nil {
		pg.Stop()
		log.Fatal(err)
	}
	store, err := postgres.Open(ctx, dbURL, postgres.Options{})
	if err != nil {
		pg.Stop()
		log.Fatal(err)
	}
	srv, err := server.New(store, server.Options{AuthKey: "cluster-key", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		store.Close()
		pg.Stop()
		log.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	return hs.URL, func() {
		hs.Close()
		srv.Close()
		store.Close()
		pg.Stop()
	}
}
