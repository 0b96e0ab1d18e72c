package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openflynn/flynn/pkg/metrics"
)

// The blobstore's metrics, served at GET /metrics to the key (never to a
// signed URL, which names one blob): flynn_blobstore_http_* by route, and
// the bytes of blobs received and sent. Routes are "/" (a list), "/*path"
// (a blob: get, head, put, delete) and /metrics; a request of any other
// method counts as metrics.UnmatchedRoute.
const metricsNamespace = "flynn_blobstore"

// reservedPath is the blob path that GET /metrics takes: no blob may have
// it, so no blob hides behind the metrics.
const reservedPath = "metrics"

// instrument returns the handler that counts every request in reg and
// hands it to serveAPI, or to the metrics. Two routers share the
// counters: httprouter cannot hold the catch-all blob route beside "/"
// and /metrics. Neither cleans or redirects paths nor answers OPTIONS or
// 405 itself: what they do not route goes to serveAPI, which answers as it
// always has.
func (h *Handler) instrument(reg *prometheus.Registry) http.Handler {
	h.received = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: metricsNamespace, Name: "bytes_in_total",
		Help: "Bytes of upload bodies received, whether or not the upload was stored.",
	})
	h.sent = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: metricsNamespace, Name: "bytes_out_total",
		Help: "Bytes of blobs sent in downloads.",
	})
	reg.MustRegister(h.received, h.sent)
	m := metrics.NewHTTP(reg, metricsNamespace)
	api := http.HandlerFunc(h.serveAPI)
	plain := func(r *metrics.Router) *metrics.Router {
		r.RedirectTrailingSlash = false
		r.RedirectFixedPath = false
		r.HandleOPTIONS = false
		r.HandleMethodNotAllowed = false
		r.NotFound = api
		return r
	}
	fixed := plain(m.Router())
	fixed.Handler(http.MethodGet, "/", api)
	fixed.Handler(http.MethodGet, metrics.Path, metrics.Handler(reg, h.opts.AuthKey))
	blobs := plain(m.Router())
	for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete} {
		blobs.Handler(method, "/*path", api)
	}
	return m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/", metrics.Path:
			fixed.ServeHTTP(w, r)
		default:
			blobs.ServeHTTP(w, r)
		}
	}))
}
