"""A fault-injecting HTTP proxy for tests: forwards requests to a server on the
loopback interface and, for a seeded fraction of them, answers 503 SlowDown, drops
the connection, or answers late. Loopback only; it serves until stopped."""
import http.client
import http.server
import random
import socket
import threading
import time

SLOW_DOWN = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
             b'<Message>Please reduce your request rate.</Message></Error>')


def forward(handler, upstream_port, body):
    """Sends the request `handler` received to the loopback upstream; returns the
    answer's status, headers (hop-by-hop ones removed) and body."""
    conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
    headers = {k: v for k, v in handler.headers.items() if k.lower() != "connection"}
    conn.request(handler.command, handler.path, body=body or None, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    kept = [(k, v) for k, v in resp.getheaders()
            if k.lower() not in ("transfer-encoding", "connection", "content-length")]
    return resp.status, kept, data


def reply(handler, status, headers, body):
    """Answers the request `handler` received."""
    handler.send_response(status)
    for k, v in headers:
        handler.send_header(k, v)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


class FaultyProxy:
    def __init__(self, upstream_port, seed=7, slow_down=0.15, reset=0.05, delay=0.1, delay_s=0.3):
        self.upstream_port = upstream_port
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.rates = (slow_down, reset, delay)
        self.delay_s = delay_s
        self.counts = {"requests": 0, "slow_down": 0, "reset": 0, "delay": 0}
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                fault = proxy.pick()
                if fault == "slow_down":
                    reply(self, 503, [("Content-Type", "application/xml")], SLOW_DOWN)
                    return
                if fault == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.close_connection = True
                    self.connection.close()
                    return
                if fault == "delay":
                    time.sleep(proxy.delay_s)
                reply(self, *forward(self, proxy.upstream_port, body))

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def pick(self):
        with self.lock:
            self.counts["requests"] += 1
            r = self.rng.random()
            slow, reset, delay = self.rates
            for name, limit in (("slow_down", slow), ("reset", slow + reset), ("delay", slow + reset + delay)):
                if r < limit:
                    self.counts[name] += 1
                    return name
            return None

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
