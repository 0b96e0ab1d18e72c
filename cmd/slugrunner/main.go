// Command slugrunner is the entrypoint of the flynn/slugrunner image: it
// unpacks $SLUG_URL into /app and runs `start TYPE` or the given command;
// see package slugrunner. SLUGRUNNER_APP_DIR moves the app from /app (for
// running outside a container); SLUGRUNNER_DEBUG=1 prints slugrunner's own
// diagnostics on stderr, which otherwise carries only the app's output.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/openflynn/flynn/slugrunner"
)

func main() {
	// The job's stdout and stderr are the app's own output: slugrunner's
	// diagnostics stay out of them unless SLUGRUNNER_DEBUG asks for them.
	level := slog.LevelWarn
	if os.Getenv("SLUGRUNNER_DEBUG") != "" {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("component", "slugrunner")
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
		// Why the process never ran is the one thing the app's owner
		// must see, as a plain line.
		fmt.Fprintf(os.Stderr, "slugrunner: %v\n", err)
		os.Exit(1)
	}
	os.Exit(code)
}
