// Command slugrunner is the entrypoint of the flynn/slugrunner image: it
// unpacks $SLUG_URL into /app and runs `start TYPE` or the given command;
// see package slugrunner. SLUGRUNNER_APP_DIR moves the app from /app (for
// running outside a container).
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/openflynn/flynn/slugrunner"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "slugrunner")
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	cfg := slugrunner.Config{
		SlugURL: os.Getenv("SLUG_URL"),
		AppDir:  os.Getenv("SLUGRUNNER_APP_DIR"),
		Port:    os.Getenv("PORT"),
		Args:    os.Args[1:],
		Signals: signals,
	}
	code, err := slugrunner.Run(context.Background(), cfg, logger)
	if err != nil {
		logger.Error("cannot run", "err", err)
		os.Exit(1)
	}
	os.Exit(code)
}
