"""The sample Dockerfile app: Python's standard library on the port its
image exposes (8080, whatever $PORT says), answering what the image's RUN
step wrote at build time."""

import http.server
import signal
import sys

PORT = 8080
BUILT = open("/srv/built.txt").read().strip()


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"Hello from Flynn (Dockerfile) built {BUILT}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    # SIGTERM (a stop or a deploy) ends the server at once.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"listening on {PORT}", flush=True)
    http.server.ThreadingHTTPServer(("", PORT), Hello).serve_forever()
