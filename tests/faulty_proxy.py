"""A fault-injecting HTTP proxy for tests: forwards requests to a server on the
loopback interface and, for a seeded fraction of them, answers 503 SlowDown, drops
the connection, or answers late. Loopback only; it serves until stopped.

Also what the test proxies (here, in glue_proxy.py and in swap_proxy.py) share: the
`LoopbackProxy` server they are built on, and `forward` and `reply`."""
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


class LoopbackProxy:
    """An HTTP server on the loopback interface, in front of the loopback server at
    `upstream_port`. Loopback only; it serves from `with` until the block ends, on
    `port`. Each request's body (bytes, empty for none) is read and passed, with the
    request handler, to `handle(self, handler, body)`, which a subclass implements to
    answer the request, usually with `forward` and `reply`. Requests are served on
    threads of their own: `lock` is for the subclass's state."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                proxy.handle(self, self.rfile.read(length) if length else b"")

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def handle(self, handler, body):
        """Answers the request `handler` received, whose body is `body`."""
        raise NotImplementedError

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class FaultyProxy(LoopbackProxy):
    def __init__(self, upstream_port, seed=7, slow_down=0.15, reset=0.05, delay=0.1, delay_s=0.3):
        super().__init__(upstream_port)
        self.rng = random.Random(seed)
        self.rates = (slow_down, reset, delay)
        self.delay_s = delay_s
        self.counts = {"requests": 0, "slow_down": 0, "reset": 0, "delay": 0}

    def handle(self, handler, body):
        fault = self.pick()
        if fault == "slow_down":
            reply(handler, 503, [("Content-Type", "application/xml")], SLOW_DOWN)
            return
        if fault == "reset":
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            handler.close_connection = True
            handler.connection.close()
            return
        if fault == "delay":
            time.sleep(self.delay_s)
        reply(handler, *forward(handler, self.upstream_port, body))

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
