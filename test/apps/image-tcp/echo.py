"""A TCP line echo server: every line it is sent comes back as
"image-tcp: <line>". It listens on port 7000 (ECHO_PORT), whatever $PORT
says, as an image with its own port does."""

import os
import signal
import socketserver
import sys

PORT = int(os.environ.get("ECHO_PORT", "7000"))


class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(b"image-tcp: " + line.rstrip(b"\r\n") + b"\n")
            self.wfile.flush()


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    server = Server(("", PORT), Echo)
    # SIGTERM (a stop) ends the server; open connections end with it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("image-tcp listening on", PORT, "($PORT is", os.environ.get("PORT", "unset") + ")")
    server.serve_forever()


if __name__ == "__main__":
    main()
