package controllerd

import (
	"log/slog"
	"net/http"

	"github.com/urfave/cli/v2"

	"github.com/openflynn/flynn/controller/server"
	"github.com/openflynn/flynn/pkg/cmdline"
)

// imageFlags are the flags of POST /apps/:id/images, which keeps the
// images `flynn docker push` uploads in the blobstore of --blobstore-url.
func imageFlags() []cli.Flag {
	return []cli.Flag{
		cmdline.Size("max-image-size", server.DefaultMaxImageSize, "largest image archive (docker save) an upload may send; the blobstore's --max-size must allow it"),
	}
}

// setImages gives cfg the blobstore that uploaded images go to, with the
// key its signed URLs carry (cfg.BlobstoreKey), and their bound. Without
// discoverd to reach a *.discoverd blobstore there is none, and uploads
// answer service_unavailable, which the log says.
func setImages(c *cli.Context, logger *slog.Logger, cfg *server.Config) error {
	cfg.MaxImageSize = cmdline.SizeOf(c, "max-image-size")
	// No overall timeout: an upload of gigabytes takes what it takes, and
	// its client's connection bounds it.
	blobs, err := blobstoreClient(c, cfg.BlobstoreKey, cfg.AuthKey, &http.Client{})
	if err != nil {
		return err
	}
	if blobs == nil {
		logger.Info("no image uploads: the blobstore URL names a discoverd service and discoverd is unknown", "blobstore_url", c.String("blobstore-url"))
		return nil
	}
	cfg.Images = blobs
	return nil
}
