"""The sample Python app: standard library only."""
import http.server
import os

PORT = int(os.environ.get("PORT", "8080"))


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"Hello from Flynn (Python) on port {PORT}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    print(f"listening on {PORT}", flush=True)
    http.server.ThreadingHTTPServer(("", PORT), Hello).serve_forever()
