"""A loopback ONTAP stand-in: the two REST endpoints naslake's ACL source calls,
with the response shapes of the ONTAP REST API documentation, over HTTPS with a
certificate the caller makes (`make_certs`), behind basic auth.

- `GET /api/storage/volumes/{uuid}?fields=nas.path` → the junction path;
- `GET /api/storage/volumes/{uuid}/files/{path}` → a directory's records (`.` and
  `..` first), `max_records` a page, `_links.next.href` until the last page;
- `GET /api/protocols/file-security/permissions/{svm}/{path}` → one path's
  permissions (`path` under the junction);
- `GET /api/protocols/cifs/shares?svm.uuid=SVM&fields=name,path,acls&max_records=N`
  → the SVM's CIFS shares ({"svm", "name", "path", "acls"}: each acl
  {"user_or_group", "sid", "permission", "type"});
- `GET /api/protocols/cifs/local-groups?svm.uuid=SVM&fields=name,sid,members&max_records=N`
  → the SVM's CIFS local groups ({"svm", "name", "sid", "members": [{"name"}]});
- `GET /api/name-services/unix-groups?svm.uuid=SVM&fields=name,id,users&max_records=N`
  → the SVM's UNIX groups ({"svm", "name", "id", "users": [{"name"}]});
  these three are paged like the listing (`max_records`, `start`, `_links.next.href`
  until the last page), answer only the records of the `svm.uuid` asked for (none for
  another SVM), and an empty list when the spec has none;
- `GET /_standin/stats` → what it served: requests, the peak number in flight,
  statuses, the decoded paths asked for.

The tree is a JSON file: {"svm", "volume", "junction", "username", "password",
"tree": {PATH: {"type", "perm": {...}, "status", "list_status", "flaky",
"flaky_status", "delay", "next_href", "extra_names", "echo_auth"}},
"unauthorized_after": N, "shares": [{"name", "path", "acls", "svm_uuid"}],
"local_groups": [{"name", "sid", "members", "svm_uuid"}], "unix_groups": [{"name",
"id", "users", "svm_uuid"}]}: the last three optional, their records passed through
as they are (`svm_uuid`, the spec's SVM by default, says whose they are; a share may
omit "acls"). `status` answers the permissions call with an error, `list_status`
the listing; `flaky` makes the first N permissions calls answer `flaky_status`
(503 by default, 429 with a Retry-After of 0); `delay` holds the permissions
answer back that many seconds; `next_href` replaces a listing's next link and
`extra_names` adds records to it; `echo_auth` answers 400 quoting the
Authorization header; `unauthorized_after` answers 401 after N good requests.
`--latency-ms` delays every answer,
`--record FILE` writes every answer as a recording the ACL source can replay.

Run: python tests/ontap_standin.py --spec TREE.json --cert-dir DIR --port-file F
"""
import argparse
import asyncio
import base64
import datetime
import json
import pathlib
import signal
import ssl
import threading
import urllib.parse


def self_signed(directory, names=("127.0.0.1", "localhost"), valid_days=(-1, 30), san=True):
    """A self-signed certificate as `openssl req -x509` makes one by default
    (basicConstraints CA:TRUE, critical; subject and authority key identifiers),
    for `names`, valid from and to those days from now; returns (cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "filer")])
    sans = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(days=valid_days[0]))
            .not_valid_after(now + datetime.timedelta(days=valid_days[1]))
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True))
    if san:  # `openssl req -x509` adds none unless told (-addext subjectAltName=…)
        cert = cert.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = cert.sign(key, hashes.SHA256())
    paths = d / "cert.pem", d / "key.pem"
    paths[0].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return tuple(str(p) for p in paths)


def make_certs(directory):
    """A CA and a server certificate for 127.0.0.1 and localhost signed by it;
    returns (ca.pem, server.pem, server.key) paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "naslake test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ontap-standin")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = d / "ca.pem", d / "server.pem", d / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return tuple(str(p) for p in paths)


class State:
    def __init__(self, spec, latency, record):
        self.spec = spec
        self.tree = spec["tree"]
        self.latency = latency
        self.record = record
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests = 0
        self.statuses = {}
        self.paths = []
        self.flaky_left = {p: n.get("flaky", 0) for p, n in self.tree.items()}
        self.authorized = 0
        self.answers = {}

    def children(self, path):
        prefix = path.rstrip("/") + "/"
        out = []
        for p, node in self.tree.items():
            if p != path and p.startswith(prefix) and "/" not in p[len(prefix):]:
                out.append((p[len(prefix):], node.get("type", "file")))
        return sorted(out)


def error(message, code):
    return {"error": {"message": message, "code": str(code)}}


def respond(st, target, authorization):
    """The answer to `GET target`: (status, JSON body, extra headers)."""
    spec = st.spec
    want = "Basic " + base64.b64encode(f"{spec['username']}:{spec['password']}".encode()).decode()
    if target.startswith("/_standin/stats"):
        with st.lock:
            return 200, {"requests": st.requests, "max_in_flight": st.max_in_flight,
                         "statuses": st.statuses, "paths": st.paths}, []
    if authorization != want:
        return 401, error("User is not authorized.", 6), []
    limit = spec.get("unauthorized_after")
    if limit is not None:
        with st.lock:
            st.authorized += 1
            over = st.authorized > limit
        if over:  # the password changed (or the account locked) mid-walk
            return 401, error("User is not authorized.", 6), []
    url = urllib.parse.urlsplit(target)
    query = urllib.parse.parse_qs(url.query)
    parts = url.path.split("/")
    # /api/storage/volumes/{uuid}[/files/{path}]
    if parts[1:4] == ["api", "storage", "volumes"]:
        if len(parts) < 5 or parts[4] != spec["volume"]:
            return 404, error("volume not found", 917927), []
        if len(parts) == 5:
            if spec["junction"] is None:  # a stand-in of the two endpoints only
                return 404, error("API not found", 3), []
            return 200, {"uuid": spec["volume"], "nas": {"path": spec["junction"]}}, []
        if len(parts) == 7 and parts[5] == "files":
            raw = urllib.parse.unquote(parts[6])
            path = "/" if raw == "/" else "/" + raw
            return listing(st, path, url.path, query)
    # /api/protocols/file-security/permissions/{svm}/{path}
    if parts[1:5] == ["api", "protocols", "file-security", "permissions"] and len(parts) == 7:
        if parts[5] != spec["svm"]:
            return 404, error("svm not found", 2), []
        full = urllib.parse.unquote(parts[6])
        with st.lock:
            st.paths.append(full)
        junction = (spec["junction"] or "").rstrip("/")
        if full == spec["junction"] or (not junction and full == "/"):
            path = "/"
        elif full.startswith(junction + "/"):
            path = full[len(junction):]
        else:
            return 404, error(f'Failed to get security descriptor of "{full}"', 655865), []
        node = st.tree.get(path)
        if node is None or ".." in path.split("/"):
            return 404, error(f'Failed to get security descriptor of "{full}". Reason: No such file or directory.', 655865), []
        with st.lock:
            flaky = st.flaky_left.get(path, 0)
            if flaky:
                st.flaky_left[path] = flaky - 1
        if flaky:
            status = node.get("flaky_status", 503)
            return status, error("busy", 1), [("Retry-After", "0")] if status == 429 else []
        if node.get("echo_auth"):  # a filer or proxy that quotes the request
            # Padded so that the credential straddles where naslake cuts a message.
            return 400, error(f"{'x' * int(node['echo_auth'])} {authorization}", 2), []
        if "status" in node:
            return node["status"], error(node.get("message", "Access denied"), 6691623), []
        body = {"svm": {"uuid": spec["svm"], "name": "vs0"}, "path": full}
        body.update(node.get("perm", {}))
        return 200, body, [("X-Standin-Delay", str(node["delay"]))] if "delay" in node else []
    # The SVM's collections: /api/protocols/cifs/shares, …/cifs/local-groups,
    # /api/name-services/unix-groups.
    collection = COLLECTIONS.get(url.path.rstrip("/"))
    if collection is not None:
        return svm_records(st, collection, url.path, query)
    return 404, error("API not found", 3), []


# URL path → the spec key holding its records.
COLLECTIONS = {"/api/protocols/cifs/shares": "shares",
               "/api/protocols/cifs/local-groups": "local_groups",
               "/api/name-services/unix-groups": "unix_groups"}


def svm_records(st, key, url_path, query):
    """One page of the spec's `key` records of the SVM `svm.uuid` names (every
    SVM's when it names none), each with its {"svm": {"uuid", "name"}}, paged as
    the files listing is."""
    spec = st.spec
    wanted = query.get("svm.uuid", [None])[0]
    records = []
    for item in spec.get(key) or []:
        owner = item.get("svm_uuid", spec["svm"])
        if wanted is not None and owner != wanted:
            continue
        record = {"svm": {"uuid": owner, "name": "vs0" if owner == spec["svm"] else "vs-other"}}
        record.update({k: v for k, v in item.items() if k != "svm_uuid"})
        records.append(record)
    try:
        size = int(query.get("max_records", ["1000"])[0])
        start = int(query.get("start", ["0"])[0])
    except ValueError:
        return 400, error("max_records and start must be numbers", 262179), []
    if size < 1 or start < 0:
        return 400, error("max_records must be positive", 262179), []
    page = records[start:start + size]
    body = {"records": page, "num_records": len(page)}
    if start + size < len(records):
        q = {k: v[0] for k, v in query.items() if k not in ("max_records", "start")}
        q.update({"max_records": size, "start": start + size})
        body["_links"] = {"next": {"href": f"{url_path}?{urllib.parse.urlencode(q)}"}}
    return 200, body, []


def listing(st, path, url_path, query):
    node = st.tree.get(path)
    if node is None:
        return 404, error("No such file or directory", 917927), []
    if "list_status" in node:
        return node["list_status"], error("Access denied", 6691623), []
    records = [{"path": path, "name": ".", "type": "directory"},
               {"path": path, "name": "..", "type": "directory"}]
    records += [{"path": path.rstrip("/") + "/" + n, "name": n, "type": t} for n, t in st.children(path)]
    records += [{"path": path, "name": n, "type": "file"} for n in node.get("extra_names", [])]
    size = int(query.get("max_records", ["1000"])[0])
    start = int(query.get("start", ["0"])[0])
    page = records[start:start + size]
    body = {"records": page, "num_records": len(page)}
    if start + size < len(records):
        q = urllib.parse.urlencode({"fields": "name,type", "max_records": size, "start": start + size})
        body["_links"] = {"next": {"href": f"{url_path}?{q}"}}
    if "next_href" in node:
        body["_links"] = {"next": {"href": node["next_href"]}}
    return 200, body, []


REASONS = {200: "OK", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests",
           500: "Internal Server Error", 503: "Service Unavailable"}


async def connection(st, reader, writer):
    """HTTP/1.1 GETs with keep-alive, one after the other, until the client closes."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            stats = target.startswith("/_standin/")
            if not stats:
                with st.lock:
                    st.requests += 1
                    st.in_flight += 1
                    st.max_in_flight = max(st.max_in_flight, st.in_flight)
                if st.latency:
                    await asyncio.sleep(st.latency)
            if method != "GET":
                status, body, extra = 405, error("only GET", 1), []
            else:
                status, body, extra = respond(st, target, headers.get("authorization"))
            # A node's "delay" holds its answer back (past the client's timeout, say).
            for k, v in extra:
                if k == "X-Standin-Delay":
                    await asyncio.sleep(float(v))
            if not stats:
                with st.lock:
                    # Counted out before the answer is written: the client cannot
                    # send its next request before this one is no longer in flight.
                    st.in_flight -= 1
                    st.statuses[str(status)] = st.statuses.get(str(status), 0) + 1
                    if st.record is not None and status != 401:
                        st.answers[target] = {"status": status, "body": body}
            data = json.dumps(body).encode()
            out = [f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}",
                   "Content-Type: application/hal+json", f"Content-Length: {len(data)}"]
            out += [f"{k}: {v}" for k, v in extra]
            writer.write(("\r\n".join(out) + "\r\n\r\n").encode() + data)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, ValueError):
        pass
    finally:
        writer.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", required=True)
    ap.add_argument("--cert-dir", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--latency-ms", type=float, default=0)
    ap.add_argument("--record")
    ap.add_argument("--cert", help="serve this certificate (with --key) instead of one make_certs signs")
    ap.add_argument("--key")
    args = ap.parse_args()
    spec = json.loads(pathlib.Path(args.spec).read_text())
    if args.cert:
        cert, key = args.cert, args.key
    else:
        _, cert, key = make_certs(args.cert_dir)
    state = State(spec, args.latency_ms / 1000.0, args.record)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)

    async def serve():
        server = await asyncio.start_server(lambda r, w: connection(state, r, w), "127.0.0.1", 0, ssl=ctx,
                                            backlog=512)
        port = server.sockets[0].getsockname()[1]
        tmp = pathlib.Path(args.port_file + ".tmp")
        tmp.write_text(str(port))
        tmp.rename(args.port_file)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        async with server:
            await stop.wait()

    asyncio.run(serve())
    if args.record:
        pathlib.Path(args.record).write_text(json.dumps({"answers": state.answers}, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
