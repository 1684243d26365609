"""A recording, fault-injecting proxy in front of moto's Glue API, for tests.

Glue's JSON protocol names the operation in the `X-Amz-Target` header, so the proxy
can record every call (operation and request body) and answer chosen calls with the
errors real Glue gives under contention and load, which moto never produces:

- `fail`: {operation: [error type, ...]}: the n-th call of the operation is answered
  with HTTP 400 and that error type (`None` forwards the call).
- `fail_after_forward`: {operation: [error type, ...]}: the n-th call of the
  operation that is forwarded (not failed by `fail`) is applied by moto, and then
  answered with HTTP 400 and that error type instead of moto's answer (`None`
  passes moto's answer on): a call Glue applied but whose answer was an error.
- `timeout_last`: {operation: k}: on the first call of a batch operation, the last k
  partitions are reported back as per-item `OperationTimeoutException` errors; they
  are still forwarded (Glue may have applied an item it then timed out on), so a
  retry meets "already exists".
- `before_first`: {operation: function}: called once, before the first call of the
  operation is forwarded (to change the catalog behind the client's back, as
  another writer would).

Loopback only; it serves until stopped."""
import json

from faulty_proxy import LoopbackProxy, forward, reply


def reply_error(handler, error):
    """Answers with HTTP 400 and a Glue error of type `error`."""
    payload = json.dumps({"__type": error, "message": f"injected by the test proxy: {error}"}).encode()
    reply(handler, 400, [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", error)], payload)


class GlueProxy(LoopbackProxy):
    def __init__(self, upstream_port, fail=None, fail_after_forward=None, timeout_last=None, before_first=None):
        super().__init__(upstream_port)
        self.fail = {k: list(v) for k, v in (fail or {}).items()}
        self.fail_after_forward = {k: list(v) for k, v in (fail_after_forward or {}).items()}
        self.timeout_last = dict(timeout_last or {})
        self.before_first = dict(before_first or {})
        self.calls = []  # (operation, request body as JSON)

    def handle(self, handler, raw):
        target = handler.headers.get("X-Amz-Target", "")
        op = target.rsplit(".", 1)[-1]
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        error, error_after, timeouts = self.plan(op, body)
        if error:
            reply_error(handler, error)
            return
        status, headers, data = forward(handler, self.upstream_port, raw)
        if error_after:
            reply_error(handler, error_after)
            return
        if timeouts and status == 200:
            out = json.loads(data or b"{}")
            errors = out.setdefault("Errors", [])
            for values in timeouts:
                errors.append({"PartitionValues": values, "ErrorDetail": {
                    "ErrorCode": "OperationTimeoutException", "ErrorMessage": "injected timeout"}})
            data = json.dumps(out).encode()
        reply(handler, status, headers, data)

    def plan(self, op, body):
        """Records a call and decides its faults: (error type instead of forwarding,
        error type after forwarding, partitions to time out), each None or empty
        for none."""
        with self.lock:
            self.calls.append((op, body))
            queue = self.fail.get(op)
            if queue:
                error = queue.pop(0)
                if error:
                    return error, None, []
            hook = self.before_first.pop(op, None)
            if hook:
                hook()
            queue = self.fail_after_forward.get(op)
            error_after = queue.pop(0) if queue else None
            k = self.timeout_last.pop(op, 0)
            if k and "PartitionInputList" in body:
                return None, error_after, [p["Values"] for p in body["PartitionInputList"][-k:]]
            return None, error_after, []

    def count(self, op):
        with self.lock:
            return sum(1 for o, _ in self.calls if o == op)

    def bodies(self, op):
        with self.lock:
            return [b for o, b in self.calls if o == op]
