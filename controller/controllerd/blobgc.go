package controllerd

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	blobstoreclient "github.com/openflynn/flynn/blobstore/client"
	"github.com/openflynn/flynn/controller/blobgc"
	"github.com/openflynn/flynn/controller/postgres"
	"github.com/openflynn/flynn/controller/server"
	discoverdclient "github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/pkg/cmdline"
)

// Config is the flynn-controller daemon's configuration.
type Config struct {
	// Server is the API server's.
	Server server.Config
	// BlobGC, when not nil, runs the blob collector beside the server.
	BlobGC *BlobGC
}

// BlobGC configures the blob collector (controller/blobgc), which deletes
// the blobs of deleted apps and the slugs no release names.
type BlobGC struct {
	// Blobstore is the blobstore's client, with its key.
	Blobstore *blobstoreclient.Client
	// Interval is the time between passes; blobgc.DefaultInterval when
	// zero.
	Interval time.Duration
}

func blobGCFlags() []cli.Flag {
	return append([]cli.Flag{
		cmdline.String("blobstore-url", "http://blobstore.discoverd", "the blobstore the controller keeps uploaded images in (flynn docker push; the hosts fetch them from this URL) and whose unused blobs (deleted apps', slugs no release names) it deletes; a *.discoverd name needs discoverd"),
		cmdline.Duration("blob-gc-interval", blobgc.DefaultInterval, "time between passes of the blob collector; 0 turns it off"),
	}, cmdline.Secret("blobstore-key", "the blobstore's key (default: the controller key)")...)
}

// blobGCConfig returns the collector's configuration, or nil when it is
// turned off or cannot reach the blobstore (a *.discoverd URL without
// discoverd), which the log says.
func blobGCConfig(c *cli.Context, logger *slog.Logger, controllerKey string) (*BlobGC, error) {
	interval := c.Duration("blob-gc-interval")
	if interval <= 0 {
		return nil, nil
	}
	key, err := cmdline.SecretOf(c, "blobstore-key")
	if err != nil {
		return nil, err
	}
	if key == "" {
		key = controllerKey
	}
	blobs, err := blobstoreClient(c, key, controllerKey, &http.Client{Timeout: time.Minute})
	if err != nil || blobs == nil {
		if blobs == nil && err == nil {
			logger.Info("no blob collection: the blobstore URL names a discoverd service and discoverd is unknown", "blobstore_url", c.String("blobstore-url"))
		}
		return nil, err
	}
	return &BlobGC{Blobstore: blobs, Interval: interval}, nil
}

// blobstoreClient is a client of --blobstore-url with key, over hc or,
// when the URL names a discoverd service, through discoverd; nil (and no
// error) when it does and discoverd is unknown.
func blobstoreClient(c *cli.Context, key, controllerKey string, hc *http.Client) (*blobstoreclient.Client, error) {
	blobs := blobstoreclient.New(c.String("blobstore-url"), key)
	blobs.HTTP = hc
	if u, err := url.Parse(c.String("blobstore-url")); err == nil && strings.HasSuffix(u.Hostname(), ".discoverd") {
		d := discoverdURL(c)
		if d == "" {
			return nil, nil
		}
		clusterKey, err := cmdline.SecretOf(c, "cluster-key")
		if err != nil {
			return nil, err
		}
		if clusterKey == "" {
			clusterKey = controllerKey
		}
		blobs.HTTP = discoverdclient.HTTPClient(discoverdclient.New(d, clusterKey))
	}
	return blobs, nil
}

// Run serves the controller API until ctx ends, with the blob collector
// beside it when cfg.BlobGC is set.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if cfg.BlobGC != nil {
		gcCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			runBlobGC(gcCtx, cfg, logger)
		}()
		defer func() {
			stop()
			<-done
		}()
	}
	return server.Run(ctx, cfg.Server, logger)
}

// runBlobGC runs the collector until ctx ends, over a pool of its own
// (server.Run keeps its store to itself), which it opens again until it
// can: the collector must not stop for good because Postgres was away
// when the controller started.
func runBlobGC(ctx context.Context, cfg Config, logger *slog.Logger) {
	for {
		store, err := postgres.Open(ctx, cfg.Server.DatabaseURL, postgres.Options{DialFunc: cfg.Server.DialDatabase})
		if err == nil {
			defer store.Close()
			blobgc.New(blobgc.Config{Blobs: cfg.BlobGC.Blobstore, References: store, Interval: cfg.BlobGC.Interval}, logger).Run(ctx)
			return
		}
		if ctx.Err() != nil {
			return
		}
		logger.Warn("blob collector: cannot open the database; trying again", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Minute):
		}
	}
}
