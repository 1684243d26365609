"""An HTTP proxy for tests that changes an object behind naslake's back: it forwards
every request to a server on the loopback interface (moto), and on the first GET of
one chosen object it first calls `before_get` (which replaces or deletes the object
in the server directly), then forwards that GET. Loopback only; it serves until
stopped."""
import urllib.parse

from faulty_proxy import LoopbackProxy, forward, reply


class SwapProxy(LoopbackProxy):
    def __init__(self, upstream_port, path_suffix, before_get):
        """`path_suffix`: the end of the request path (without the query) that names
        the object, e.g. `/data/long/f1.csv`; `before_get`: called once, with no
        arguments, before the first GET of it is forwarded."""
        super().__init__(upstream_port)
        self.path_suffix = path_suffix
        self.before_get = before_get
        self.fired = False
        self.requests = []  # (method, path) of every request, in arrival order

    def handle(self, handler, body):
        path = urllib.parse.unquote(handler.path.split("?", 1)[0])
        with self.lock:
            self.requests.append((handler.command, handler.path))
            fire = handler.command == "GET" and path.endswith(self.path_suffix) and not self.fired
            if fire:
                self.fired = True
                self.before_get()
        reply(handler, *forward(handler, self.upstream_port, body))
