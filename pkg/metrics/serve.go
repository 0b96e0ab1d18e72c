package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Timeouts of Serve's server. A scrape is one small request: they cut off
// a client that dawdles, not a slow collector.
const (
	serveReadHeaderTimeout = 5 * time.Second
	serveReadTimeout       = 10 * time.Second
	serveWriteTimeout      = 30 * time.Second
	serveIdleTimeout       = 2 * time.Minute
	// serveShutdownTimeout is how long scrapes in flight get once ctx has
	// ended; the connections still open after it are closed.
	serveShutdownTimeout = 5 * time.Second
)

// Serve serves h at GET Path on ln, and nothing else, for a daemon whose
// metrics have a listener of their own (the scheduler, gitreceive). It
// returns nil once ctx has ended and the server has shut down, or the
// error that stopped the server before. ln is closed either way. The
// server's own complaints (a TLS handshake, a bad request) go to logger
// as warnings.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, logger *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("GET "+Path, h)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: serveReadHeaderTimeout,
		ReadTimeout:       serveReadTimeout,
		WriteTimeout:      serveWriteTimeout,
		IdleTimeout:       serveIdleTimeout,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		srv.Close() // the connections it had accepted
		return fmt.Errorf("serve metrics: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), serveShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	<-served // http.ErrServerClosed
	return nil
}
