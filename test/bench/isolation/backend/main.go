// Command backend is the isolation benchmark's app: a small HTTP server
// answering every request with a short body, listening on $PORT.
package main

import (
	"net/http"
	"os"
)

func main() {
	body := []byte("hello from flynn\n")
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(body)
	})
	if err := http.ListenAndServe(":"+os.Getenv("PORT"), nil); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
}
