"""A hostile app: from inside its job it tries what an attacker would.

GET /            "hostile" (the app is up)
GET /attack      runs every attempt and answers a JSON object of results:
                 {"name": {"blocked": true|false, "detail": "..."}, ...}
GET /forkbomb    forks until it cannot and answers how many it made
GET /flood?mb=N  writes N MiB to stdout without a newline, then one

The test (test/e2e TestHostileApp) deploys it, reads the results and checks
that every attempt was blocked or contained. Standard library only.
"""
import http.server
import json
import os
import socket
import struct
import sys
import time
import urllib.parse
import urllib.request

PORT = int(os.environ.get("PORT", "8080"))

# The node's fixed platform ports, and a few others a node may have.
PLATFORM_PORTS = {
    "discoverd": 1111,
    "host-api": 1113,
    "etcd-client": 1121,
    "etcd-peer": 1122,
    "etcd-default-client": 2379,
    "gitreceive-ssh": 2222,
    "sshd": 22,
    "job-port-range-low": 55000,
    "job-port-range-high": 55999,
}
# The components' own ports come from the node's job port range; the test
# looks them up in discoverd and passes them as PLATFORM_PORTS=name=port,…
for item in os.environ.get("PLATFORM_PORTS", "").split(","):
    name, _, port = item.partition("=")
    if name and port.isdigit():
        PLATFORM_PORTS[name] = int(port)

KEY_NAMES = ("KEY", "SECRET", "PASSWORD", "TOKEN")


def gateway():
    """The default route's gateway: the node as the app's namespace sees it."""
    with open("/proc/net/route") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == "00000000":
                return socket.inet_ntoa(struct.pack("<L", int(fields[2], 16)))
    return None


def targets():
    """Addresses the node may be reached on from inside the job."""
    out = []
    for addr in (gateway(), os.environ.get("EXTERNAL_IP"), "127.0.0.1"):
        if addr and addr not in out:
            out.append(addr)
    return out


def try_connect(host, port, timeout=2.0):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True, "connected"
    except OSError as e:
        return False, str(e)


def attack():
    results = {}

    def record(name, blocked, detail):
        results[name] = {"blocked": blocked, "detail": detail}

    # 1. Every platform port on every address of the node.
    for host in targets():
        for name, port in PLATFORM_PORTS.items():
            ok, detail = try_connect(host, port)
            record(f"connect {name} {host}:{port}", not ok, detail)

    # 2. Write a discoverd instance (as a fake flynn-host would).
    for host in targets():
        body = json.dumps({"addr": "10.9.9.9:1", "proto": "http", "meta": {"id": "evil"}}).encode()
        req = urllib.request.Request(f"http://{host}:1111/services/flynn-host/instances/evil", data=body, method="PUT")
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:
                record(f"register in discoverd at {host}", False, f"status {resp.status}")
        except Exception as e:  # refused, reset, timed out or 4xx
            record(f"register in discoverd at {host}", True, str(e))

    # 3. Keys in its environment, or in PID 1's.
    leaked = [k for k in os.environ if any(n in k for n in KEY_NAMES)]
    record("key in own env", not leaked, ",".join(leaked) or "none")
    try:
        with open("/proc/1/environ", "rb") as f:
            env1 = [kv.split(b"=", 1)[0].decode() for kv in f.read().split(b"\0") if kv]
        leaked1 = [k for k in env1 if any(n in k for n in KEY_NAMES)]
        record("key in pid 1's env", not leaked1, ",".join(leaked1) or "none")
    except OSError as e:
        record("key in pid 1's env", True, str(e))

    # 4. Root, and the node's files.
    record("runs as root", os.getuid() != 0, f"uid {os.getuid()}")
    for path in ("/var/run/docker.sock", "/run/docker.sock", "/etc/flynn/host.env", "/var/lib/flynn"):
        record(f"sees {path}", not os.path.exists(path), "exists" if os.path.exists(path) else "absent")

    # 5. Bind the controller's port: in its own namespace this binds the
    # app's own port 1114, which nothing on the node sends to.
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", PLATFORM_PORTS["controller"]))
        s.listen(1)
        record("bind the controller's port", True, "bound in the app's own namespace only")
    except OSError as e:
        record("bind the controller's port", True, str(e))
    finally:
        s.close()
    return results


def forkbomb():
    """Fork children that sleep until fork fails; report how many."""
    children = []
    error = ""
    for _ in range(100000):
        try:
            pid = os.fork()
        except OSError as e:
            error = str(e)
            break
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        children.append(pid)
    for pid in children:
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    for pid in children:
        try:
            os.waitpid(pid, 0)
        except OSError:
            pass
    return {"forked": len(children), "error": error}


def flood(mb):
    chunk = b"x" * (1 << 20)
    out = sys.stdout.buffer
    for _ in range(mb):
        out.write(chunk)
    out.write(b"\nflood done\n")
    out.flush()
    return {"wrote_mib": mb}


class Handler(http.server.BaseHTTPRequestHandler):
    def reply(self, obj, status=200):
        body = (json.dumps(obj) if not isinstance(obj, str) else obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        if u.path == "/attack":
            self.reply(attack())
        elif u.path == "/forkbomb":
            self.reply(forkbomb())
        elif u.path == "/flood":
            mb = int(urllib.parse.parse_qs(u.query).get("mb", ["64"])[0])
            self.reply(flood(mb))
        else:
            self.reply("hostile")

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    print(f"listening on {PORT}", flush=True)
    http.server.ThreadingHTTPServer(("", PORT), Handler).serve_forever()
