"""The ACL job against a loopback ONTAP stand-in (HTTPS with a certificate made
here, basic auth, the documented response shapes, pagination, injected 401, 403,
404, 429 and 503), and against a real POSIX tree with ACLs set by setfacl and read
back by getfacl. Output is read with DuckDB."""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
import urllib.request
import ssl
import uuid

import pytest

from conftest import ROOT, duck_rows, naslake, run_job

MOTO = os.environ.get("NASLAKE_TEST_MOTO")
SVM = "5f3c4a1e-0000-4000-8000-0000000000a1"
VOLUME = "7d2e9b4c-0000-4000-8000-0000000000b2"
USER, PASSWORD = "naslake-audit", "Pw-0f-the-filer-9d1c"
ENTRY_COLS = ["path", "object_type", "entry_index", "principal", "principal_sid", "principal_id", "principal_kind",
              "principal_resolved", "entry_type", "rights", "advanced_rights", "apply_to", "inherited",
              "owner", "owner_sid", "owner_resolved", "control_flags", "dacl_present", "dacl_protected",
              "mode", "mode_text", "setuid", "setgid", "sticky", "sensitive", "source", "svm", "volume", "security_style", "effective_style"]


def ace(user, rights=None, access="access_allow", inherited=False, apply=("this_folder", "sub_folders", "files"),
        advanced=None):
    a = {"user": user, "access": access, "inherited": inherited,
         "apply_to": {k: k in apply for k in ("this_folder", "sub_folders", "files")}, "access_control": "file_directory"}
    if rights:
        a["rights"] = rights
    if advanced:
        a["advanced_rights"] = {k: True for k in advanced}
    return a


def ntfs(owner="BUILTIN\\Administrators", flags="0x8004", acls=(), **extra):
    return {"owner": owner, "group": "BUILTIN\\Administrators", "control_flags": flags, "acls": list(acls),
            "security_style": "ntfs", "effective_style": "ntfs", "user_id": "0", "group_id": "0",
            "mode_bits": 777, "text_mode_bits": "rwxrwxrwx", "inode": 64, **extra}


def unix(mode, owner="root", group="root", uid="0"):
    return {"owner": owner, "group": group, "security_style": "unix", "effective_style": "unix",
            "mode_bits": int(oct(mode)[2:]), "user_id": uid, "group_id": "0", "inode": 99}


ADMIN_FULL = ace("BUILTIN\\Administrators", "full_control")

# The known tree: each path names the rule it is there to fire (or not to fire).
TREE = {
    "/": {"type": "directory", "perm": ntfs(acls=[ADMIN_FULL, ace("CREATOR OWNER", "full_control", apply=("sub_folders", "files")),
                                                  ace("Everyone", "read_and_execute")])},
    "/hr": {"type": "directory", "perm": ntfs(flags="0x9004", acls=[ADMIN_FULL, ace("CORP\\HR-Team", "modify"),
                                                                     ace("Everyone", "read")])},
    "/hr/pay.xlsx": {"type": "file", "perm": ntfs(acls=[ace("CORP\\alice", "full_control", apply=("this_folder",)),
                                                        ace("S-1-5-21-1-2-3-1107", "read", inherited=True)])},
    "/public": {"type": "directory", "perm": ntfs(acls=[ace("Everyone", "full_control")])},
    "/public/readme.txt": {"type": "file", "perm": ntfs(acls=[ace("Everyone", "modify", inherited=True, apply=("this_folder",))])},
    "/legacy": {"type": "directory", "perm": ntfs(flags="0x8000", acls=[])},
    "/deny.txt": {"type": "file", "perm": ntfs(acls=[ace("CORP\\bob", "write", access="access_deny", apply=("this_folder",)),
                                                     ace("CORP\\Domain Users", "read", inherited=True, apply=("this_folder",))])},
    "/acl-editor.txt": {"type": "file", "perm": ntfs(acls=[ace("CORP\\Finance-Team", advanced=["read_data", "write_perm"], apply=("this_folder",), inherited=True),
                                                           ace("S-1-5-21-1-2-3-512", advanced=["write_owner"], apply=("this_folder",), inherited=True)])},
    "/orphan-owner.doc": {"type": "file", "perm": ntfs(owner="S-1-5-21-1-2-3-1999", acls=[ADMIN_FULL])},
    "/unix": {"type": "directory", "perm": unix(0o1777)},
    "/unix/su-tool": {"type": "file", "perm": unix(0o4755)},
    "/unix/open.log": {"type": "file", "perm": unix(0o666, owner="svc", uid="1200")},
    "/unix/closed.log": {"type": "file", "perm": unix(0o640)},
    "/unix/sticky-file": {"type": "file", "perm": unix(0o1666)},
    "/carol.txt": {"type": "file", "perm": ntfs(owner="CORP\\carol", acls=[ace("CORP\\carol", "full_control", apply=("this_folder",))])},
    "/echo.txt": {"type": "file", "echo_auth": 286, "perm": ntfs(acls=[ADMIN_FULL])},
    # Broad principals matched by SID alone, and by names in another case.
    "/by-sid.txt": {"type": "file", "perm": ntfs(acls=[ace("S-1-5-32-545", "modify", apply=("this_folder",), inherited=True)])},
    "/lower.txt": {"type": "file", "perm": ntfs(acls=[ace("everyone", "write", apply=("this_folder",), inherited=True),
                                                      ace("corp\\domain users", "write", apply=("this_folder",), inherited=True)])},
    "/gone.txt": {"type": "file", "status": 404, "message": "No such file or directory"},
    "/locked.txt": {"type": "file", "status": 403, "message": "Access denied"},
    "/secret": {"type": "directory", "list_status": 403, "perm": ntfs(acls=[ADMIN_FULL])},
    "/secret/never.txt": {"type": "file", "perm": ntfs(acls=[ADMIN_FULL])},
    "/flaky.txt": {"type": "file", "flaky": 2, "perm": ntfs(acls=[ADMIN_FULL])},
    "/busy.txt": {"type": "file", "flaky": 1, "flaky_status": 429, "perm": ntfs(acls=[ADMIN_FULL])},
    "/down.txt": {"type": "file", "flaky": 100, "perm": ntfs(acls=[ADMIN_FULL])},
    "/many": {"type": "directory", "extra_names": ["bad/name", "ctl\u0001char", "f0.dat"], "perm": ntfs(acls=[ADMIN_FULL])},
    **{f"/many/f{i}.dat": {"type": "file", "perm": ntfs(acls=[ADMIN_FULL])} for i in range(7)},
    "/odd name %2F.txt": {"type": "file", "perm": ntfs(acls=[ADMIN_FULL])},
    "/ünïcode.txt": {"type": "file", "perm": ntfs(acls=[ADMIN_FULL])},
}


class Standin:
    """The stand-in as a child process, stopped by its PID."""

    def __init__(self, tmp, tree, latency_ms=0, record=None, junction="/vol1", unauthorized_after=None,
                 cert=None, svm_lists=None):
        """`svm_lists`: the SVM's `shares`, `local_groups` and `unix_groups` (stand-in spec keys)."""
        self.dir = pathlib.Path(tmp) / f"standin-{uuid.uuid4().hex[:6]}"
        self.dir.mkdir(parents=True)
        spec = {"svm": SVM, "volume": VOLUME, "junction": junction, "username": USER, "password": PASSWORD,
                "tree": tree, "unauthorized_after": unauthorized_after, **(svm_lists or {})}
        (self.dir / "spec.json").write_text(json.dumps(spec))
        port_file = self.dir / "port"
        args = [sys.executable, str(ROOT / "tests" / "ontap_standin.py"), "--spec", str(self.dir / "spec.json"),
                "--cert-dir", str(self.dir / "certs"), "--port-file", str(port_file), "--latency-ms", str(latency_ms)]
        if record:
            args += ["--record", str(record)]
        if cert:
            args += ["--cert", cert[0], "--key", cert[1]]
        self.proc = subprocess.Popen(args)
        for _ in range(200):
            if port_file.exists():
                break
            if self.proc.poll() is not None:
                raise RuntimeError("the ONTAP stand-in did not start")
            time.sleep(0.05)
        self.port = int(port_file.read_text())
        self.url = f"https://127.0.0.1:{self.port}"
        self.ca = cert[0] if cert else str(self.dir / "certs" / "ca.pem")

    def stats(self):
        ctx = ssl.create_default_context(cafile=self.ca)
        with urllib.request.urlopen(f"{self.url}/_standin/stats", context=ctx, timeout=10) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def env(self, **over):
        e = {"NASLAKE_ONTAP_URL": self.url, "NASLAKE_ONTAP_USERNAME": USER, "NASLAKE_ONTAP_PASSWORD": PASSWORD,
             "NASLAKE_ONTAP_SVM_UUID": SVM, "NASLAKE_ONTAP_VOLUME_UUID": VOLUME, "NASLAKE_ONTAP_CA_BUNDLE": self.ca}
        e.update(over)
        return {k: v for k, v in e.items() if v is not None}


@pytest.fixture
def standin(tmp_path):
    started = []

    def start(tree=TREE, **kw):
        s = Standin(tmp_path, tree, **kw)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


# Who can reach what (acl_findings reads the last two); tests/test_acl_access.py
# checks them against a directory.
ACCESS_TABLES = "".join(f"""
[tables.{t}]
schema = "{ROOT}/schemas/{t}.toml"
sql = "{ROOT}/jobs/{t}.sql"
mode = "overwrite-partitions"
""" for t in ("acl_shares", "acl_principals", "acl_memberships", "acl_effective_access"))


def job(tmp, ontap="", source="", name="acl_test"):
    defaults = {"page_size": "3", "max_retries": "2", "max_in_flight": "4"}
    for line in ontap.splitlines():
        defaults.pop(line.split("=")[0].strip(), None)
    ontap = "\n".join([ontap] + [f"{k} = {v}" for k, v in defaults.items()])
    spec = f"""
name = "{name}"
[sources.acl]
format = "acl"
sensitive = ["/hr"]
group_names = ["corp\\\\*-team"]
{source}
[sources.acl.ontap]
{ontap}
[tables.acl_entries]
schema = "{ROOT}/schemas/acl_entries.toml"
mode = "overwrite-partitions"
{ACCESS_TABLES}
[tables.acl_rejects]
schema = "{ROOT}/schemas/acl_rejects.toml"
from = "rejects"
[tables.acl_findings]
schema = "{ROOT}/schemas/acl_findings.toml"
sql = "{ROOT}/jobs/acl_findings.sql"
mode = "overwrite-partitions"
"""
    p = pathlib.Path(tmp) / f"{name}-{uuid.uuid4().hex[:6]}.toml"
    p.write_text(spec)
    return p


def entries(lake):
    return [dict(zip(ENTRY_COLS, r)) for r in duck_rows(lake, "acl_entries", ENTRY_COLS)]


def findings(lake):
    cols = ["rule_id", "severity", "path", "principal", "rights"]
    return {tuple(r) for r in duck_rows(lake, "acl_findings", cols)}


def rejects(lake):
    return {r[0]: r[1:] for r in duck_rows(lake, "acl_rejects", ["path", "stage", "http_status", "reason"], partitioned=False)}


@pytest.fixture
def known(standin, tmp_path):
    s = standin()
    lake = tmp_path / "lake"
    run = run_job(job(tmp_path), lake, env=s.env())
    return s, run, lake


def test_the_walk_collects_every_path_once_with_its_entries(known):
    s, run, lake = known
    rows = entries(lake)
    paths = {r["path"] for r in rows}
    collected = {p for p, n in TREE.items()
                 if "perm" in n and not p.startswith("/secret/") and p not in ("/down.txt", "/echo.txt")}
    assert paths == collected
    # One row per entry, or one for an object without any, in ACL order.
    for p in collected:
        want = TREE[p]["perm"].get("acls", [])
        got = sorted((r for r in rows if r["path"] == p), key=lambda r: r["entry_index"] if r["entry_index"] is not None else -1)
        if not want and TREE[p]["perm"]["effective_style"] == "ntfs":
            assert len(got) == 1 and got[0]["entry_index"] is None, p
            continue
        if TREE[p]["perm"]["effective_style"] == "unix":
            assert [r["principal_kind"] for r in got] == ["owner", "owning_group", "everyone"], p
            continue
        assert [r["principal"] for r in got] == [a["user"] for a in want], p
        assert [r["entry_index"] for r in got] == list(range(len(want)))
        for r, a in zip(got, want):
            assert r["entry_type"] == {"access_allow": "allow", "access_deny": "deny"}[a["access"]]
            assert r["inherited"] == a["inherited"]
            assert r["apply_to"] == [k for k in ("this_folder", "sub_folders", "files") if a["apply_to"][k]]
            if "rights" in a:
                assert r["rights"] == a["rights"]
            else:
                assert r["advanced_rights"] == [k for k in ADVANCED_ORDER if k in a["advanced_rights"]]
    by = {(r["path"], r["entry_index"]): r for r in rows}
    everyone = by[("/", 2)]
    assert (everyone["principal_sid"], everyone["principal_kind"]) == ("S-1-1-0", "everyone")
    assert by[("/hr", 0)]["dacl_protected"] is True and by[("/hr", 0)]["control_flags"] == 0x9004
    assert by[("/hr/pay.xlsx", 1)]["principal_resolved"] is False
    assert by[("/hr/pay.xlsx", 0)]["sensitive"] is True and by[("/", 0)]["sensitive"] is False
    assert by[("/unix/su-tool", 0)]["mode"] == 0o4755 and by[("/unix/su-tool", 0)]["mode_text"] == "rwsr-xr-x"
    assert {r["source"] for r in rows} == {"ontap"} and {r["svm"] for r in rows} == {SVM}
    assert {r["volume"] for r in rows} == {VOLUME}
    # The report's counts add up: every path is rows or a reject, each once.
    assert run.code == 3, run.stderr
    t = run.report["totals"]
    keys = [f["key"] for f in run.report["files"]]
    assert len(keys) == len(set(keys)) == t["files_seen"]  # f0.dat, listed twice, is one path
    assert t["records_loaded"] == len(rows)
    assert t["rejects_rows"] == len(rejects(lake)) == t["files_rejected"] + t["records_rejected"]
    assert set(keys) == collected | set(rejects(lake))


ADVANCED_ORDER = ["read_data", "write_data", "append_data", "read_ea", "write_ea", "execute_file", "delete_child",
                  "read_attr", "write_attr", "delete", "read_perm", "write_perm", "write_owner", "synchronize"]


def test_vanished_denied_unlistable_and_failing_paths_are_rejects_and_the_walk_goes_on(known):
    s, run, lake = known
    r = rejects(lake)
    assert r["/gone.txt"][:2] == ("permissions", 404) and "vanished" in r["/gone.txt"][2]
    assert r["/locked.txt"][:2] == ("permissions", 403) and "denied" in r["/locked.txt"][2]
    assert r["/secret"][:2] == ("walk", 403)
    assert r["/down.txt"][:2] == ("permissions", 503) and "after 2 retries" in r["/down.txt"][2]
    # Listed names naslake never asks about are rejects too, not silently dropped.
    assert r["/many/bad%2Fname"][0] == "walk" and "never asked" in r["/many/bad%2Fname"][2]
    assert r["/many/ctl%01char"][0] == "walk"
    assert set(r) == {"/gone.txt", "/locked.txt", "/secret", "/down.txt", "/echo.txt", "/many/bad%2Fname",
                      "/many/ctl%01char"}
    stats = s.stats()
    # Retried: 503 twice then an answer, 429 once; /down.txt 1 + 2 retries.
    asked = stats["paths"]
    assert asked.count("/vol1/flaky.txt") == 3 and asked.count("/vol1/busy.txt") == 2
    assert asked.count("/vol1/down.txt") == 3
    assert stats["max_in_flight"] <= 4


def test_listing_pages_are_followed_and_bad_names_never_reach_the_filer(known):
    s, run, lake = known
    paths = {r["path"] for r in entries(lake)}
    assert {f"/many/f{i}.dat" for i in range(7)} <= paths  # 9 records + 2 bad names over 4 pages of 3
    asked = s.stats()["paths"]
    assert "/vol1/odd name %2F.txt" in asked and "/vol1/ünïcode.txt" in asked
    assert not any("bad" in p or "\u0001" in p or "/../" in p for p in asked)
    # The junction path prefixes every permissions call; the root is the junction itself.
    assert "/vol1" in asked and all(p == "/vol1" or p.startswith("/vol1/") for p in asked)


def test_findings_fire_on_their_cases_and_not_on_the_others(known):
    s, run, lake = known
    f = findings(lake)
    rules = {}
    for rule, sev, path, principal, rights in f:
        rules.setdefault(rule, set()).add((sev, path, principal))
    assert rules["broad_access"] == {
        ("medium", "/hr", "Everyone"),              # read on a sensitive path
        ("high", "/public", "Everyone"),            # full control
        ("high", "/public/readme.txt", "Everyone"),  # modify, inherited
        ("high", "/unix", "other"),                 # POSIX other rwx (the sticky bit does not matter here)
        ("high", "/unix/open.log", "other"),
        ("high", "/unix/sticky-file", "other"),
        ("high", "/by-sid.txt", "S-1-5-32-545"),
        ("high", "/lower.txt", "everyone"),
        ("high", "/lower.txt", "corp\\domain users"),
    }  # not: Everyone read & execute on / (not sensitive), Domain Users read on /deny.txt
    assert rules["inheritance_broken"] == {("medium", "/hr", None)}
    assert rules["null_dacl"] == {("high", "/legacy", None)}
    # A bare SID is one ONTAP could not name: orphaned, whatever its RID (512 is a
    # Domain Admins group, of a domain the filer no longer resolves).
    assert rules["orphaned_sid"] == {("medium", "/hr/pay.xlsx", "S-1-5-21-1-2-3-1107"),
                                     ("medium", "/acl-editor.txt", "S-1-5-21-1-2-3-512"),
                                     ("medium", "/orphan-owner.doc", "S-1-5-21-1-2-3-1999")}
    assert rules["user_ace"] == {("low", "/hr/pay.xlsx", "CORP\\alice"),
                                 ("low", "/carol.txt", "CORP\\carol")}  # not CORP\HR-Team, a group by pattern
    assert rules["deny_ace"] == {("low", "/deny.txt", "CORP\\bob")}
    assert rules["permission_change"] == {
        ("high", "/hr/pay.xlsx", "CORP\\alice"),
        ("high", "/public", "Everyone"),
        ("high", "/acl-editor.txt", "CORP\\Finance-Team"),
    }  # not: BUILTIN\Administrators, CREATOR OWNER, Domain Admins (S-1-5-21-…-512) with write_owner,
    #      CORP\carol's full control of her own /carol.txt
    # Not /unix (a sticky directory); /unix/sticky-file (sticky protects nothing on a file).
    assert rules["world_writable"] == {("high", "/unix/open.log", "other"), ("high", "/unix/sticky-file", "other")}
    assert rules["setuid_setgid"] == {("medium", "/unix/su-tool", "root")}
    assert set(rules) == {"broad_access", "inheritance_broken", "null_dacl", "orphaned_sid", "user_ace", "deny_ace",
                          "permission_change", "world_writable", "setuid_setgid"}


def test_a_wrong_password_stops_the_run_at_once_and_is_never_shown(standin, tmp_path):
    s = standin()
    lake = tmp_path / "lake"
    wrong = "Not-the-password-77a1"
    run = run_job(job(tmp_path), lake, env=s.env(NASLAKE_ONTAP_PASSWORD=wrong), check_codes=(1,))
    out = run.stdout + run.stderr
    assert "401" in out and "credentials" in out
    assert wrong not in out and PASSWORD not in out
    # The first 401 stops the walk: no retry storm.
    assert s.stats()["statuses"].get("401", 0) <= 2
    assert not (lake / "acl_entries").exists() or not list((lake / "acl_entries").rglob("*.parquet"))


def test_a_wrong_volume_uuid_fails_the_run(standin, tmp_path):
    s = standin({"/": TREE["/"]})
    other = "00000000-0000-4000-8000-000000000000"
    run = run_job(job(tmp_path), tmp_path / "lake", env=s.env(NASLAKE_ONTAP_VOLUME_UUID=other), check_codes=(1, 2))
    assert other in run.stdout + run.stderr and "not found" in run.stdout + run.stderr


def test_the_password_reaches_no_log_report_or_output(known, tmp_path):
    import base64
    s, run, lake = known
    debug = run_job(job(tmp_path), tmp_path / "lake2", env=s.env(NASLAKE_LOG="debug"))
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    # /echo.txt's filer error quotes the Authorization header: the reject says why,
    # without it.
    reason = rejects(lake)["/echo.txt"][2]
    assert "<red" in reason and token[:6] not in reason and "Basic" not in reason
    blobs = [run.stdout, run.stderr, debug.stdout, debug.stderr]
    blobs += [p.read_text(errors="replace") for p in lake.rglob("*.json")]
    for table, part in (("acl_entries", True), ("acl_rejects", False), ("acl_findings", True)):
        blobs += [repr(r) for r in duck_rows(lake, table, ["*"], partitioned=part)]
    assert len(blobs) > 10
    assert not any(PASSWORD in b or token in b for b in blobs)


def test_a_401_in_the_middle_of_the_walk_stops_it_without_a_storm(standin, tmp_path):
    s = standin(dict(TREE, **{f"/bulk/f{i}": TREE["/many/f0.dat"] for i in range(200)},
                     **{"/bulk": {"type": "directory", "perm": ntfs(acls=[ADMIN_FULL])}}),
                unauthorized_after=20)
    lake = tmp_path / "lake"
    run = run_job(job(tmp_path, ontap='junction_path = "/vol1"'), lake, env=s.env(), check_codes=(1,))
    assert "401" in run.stdout + run.stderr
    stats = s.stats()
    # At most the requests in flight (max_in_flight = 4) when the first came back:
    # no retries, and none of the requests waiting for a permit is sent after it.
    assert stats["statuses"]["401"] <= 4
    assert stats["requests"] < 60
    assert not (lake / "_naslake" / "catalog").exists() or not list((lake / "_naslake" / "catalog").rglob("acl_*.json"))


def test_a_filer_without_the_volumes_endpoint_is_asked_by_volume_paths(standin, tmp_path):
    tree = {"/": TREE["/"], "/d": TREE["/hr"], "/d/f.txt": TREE["/public"]}
    s = standin(tree, junction=None)
    lake = tmp_path / "lake"
    run = run_job(job(tmp_path), lake, env=s.env())
    assert {e["path"] for e in entries(lake)} == {"/", "/d", "/d/f.txt"}
    assert "no junction path" in run.stdout + run.stderr
    assert set(s.stats()["paths"]) == {"/", "/d", "/d/f.txt"}


def test_a_filer_that_cannot_be_reached_fails_the_run(tmp_path):
    import socket
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    port = sock.getsockname()[1]
    env = {"NASLAKE_ONTAP_URL": f"https://127.0.0.1:{port}", "NASLAKE_ONTAP_USERNAME": USER,
           "NASLAKE_ONTAP_PASSWORD": PASSWORD, "NASLAKE_ONTAP_SVM_UUID": SVM, "NASLAKE_ONTAP_VOLUME_UUID": VOLUME}
    run = run_job(job(tmp_path, ontap="max_retries = 1"), tmp_path / "lake", env=env, check_codes=(1,))
    sock.close()
    assert "cannot connect" in run.stdout + run.stderr and PASSWORD not in run.stdout + run.stderr


def test_tls_is_verified_unless_the_insecure_switch_says_otherwise(standin, tmp_path):
    s = standin()
    no_ca = run_job(job(tmp_path), tmp_path / "a", env=s.env(NASLAKE_ONTAP_CA_BUNDLE=""), check_codes=(1,))
    assert "certificate" in (no_ca.stdout + no_ca.stderr).lower()
    insecure = run_job(job(tmp_path, ontap="insecure = true"), tmp_path / "b",
                       env=s.env(NASLAKE_ONTAP_CA_BUNDLE=""))
    assert "NOT verified" in insecure.stdout + insecure.stderr
    assert {r["path"] for r in entries(tmp_path / "b")} >= {"/", "/hr"}
    other_ca = tmp_path / "other-ca.pem"
    sys.path.insert(0, str(ROOT / "tests"))
    from ontap_standin import make_certs
    ca, _, _ = make_certs(tmp_path / "other")
    shutil.copyfile(ca, other_ca)
    wrong_ca = run_job(job(tmp_path), tmp_path / "c", env=s.env(NASLAKE_ONTAP_CA_BUNDLE=str(other_ca)), check_codes=(1,))
    assert "certificate" in (wrong_ca.stdout + wrong_ca.stderr).lower()


def test_a_filers_own_self_signed_certificate_in_ca_bundle_is_pinned(standin, tmp_path):
    """A certificate made as `openssl req -x509` makes one (CA:TRUE), in ca_bundle:
    trusted as the filer's own (webpki alone refuses it as CaUsedAsEndEntity), with
    its names and validity still checked; any other certificate is refused with an
    error that says what to put in ca_bundle."""
    sys.path.insert(0, str(ROOT / "tests"))
    from ontap_standin import self_signed
    own = self_signed(tmp_path / "own")
    s = standin(cert=own)
    ok = run_job(job(tmp_path), tmp_path / "a", env=s.env(NASLAKE_ONTAP_CA_BUNDLE=own[0]))
    assert {r["path"] for r in entries(tmp_path / "a")} >= {"/", "/hr"}
    # The bundle may hold other certificates beside it.
    other, _ = self_signed(tmp_path / "other")
    both = tmp_path / "both.pem"
    both.write_text(pathlib.Path(other).read_text() + pathlib.Path(own[0]).read_text())
    run_job(job(tmp_path), tmp_path / "b", env=s.env(NASLAKE_ONTAP_CA_BUNDLE=str(both)))
    # Another certificate: refused, and told what to do.
    wrong = run_job(job(tmp_path), tmp_path / "c", env=s.env(NASLAKE_ONTAP_CA_BUNDLE=other), check_codes=(1,))
    assert "put the server's CA in it, or the server's own certificate" in wrong.stdout + wrong.stderr
    # Pinned, but for another name, or expired: refused.
    for name, cert in (("name", self_signed(tmp_path / "named", names=("filer.example",))),
                       ("expired", self_signed(tmp_path / "expired", valid_days=(-10, -1)))):
        bad = standin(cert=cert)
        run = run_job(job(tmp_path), tmp_path / f"d-{name}", env=bad.env(NASLAKE_ONTAP_CA_BUNDLE=cert[0]),
                      check_codes=(1,))
        said = (run.stdout + run.stderr).lower()
        assert ("not valid for name" in said or "notvalidforname" in said) if name == "name" else "expired" in said, said
    # A common name and no subjectAltName (openssl's default): refused, saying how
    # to make one that names the host.
    cn_only = self_signed(tmp_path / "cn", san=False)
    bad = standin(cert=cn_only)
    run = run_job(job(tmp_path), tmp_path / "e", env=bad.env(NASLAKE_ONTAP_CA_BUNDLE=cn_only[0]), check_codes=(1,))
    assert "subjectAltName=DNS:HOST,IP:ADDRESS" in run.stdout + run.stderr, run.stderr


def test_a_recording_and_a_filer_in_the_environment_are_refused_together(tmp_path):
    run = run_job(ROOT / "jobs" / "acl.toml", tmp_path / "lake", env={"NASLAKE_ONTAP_URL": "https://filer.example.com"},
                  check_codes=(2,))
    said = run.stdout + run.stderr
    assert "replay" in said and "NASLAKE_ONTAP_URL" in said, said
    assert not (tmp_path / "lake" / "_naslake" / "catalog").exists()


def test_settings_come_from_the_spec_and_the_environment_wins(standin, tmp_path):
    s = standin()
    spec_settings = f'url = "{s.url}"\nusername = "{USER}"\nsvm_uuid = "{SVM}"\nvolume_uuid = "not-this-one"\nca_bundle = "{s.ca}"'
    env = {"NASLAKE_ONTAP_PASSWORD": PASSWORD, "NASLAKE_ONTAP_VOLUME_UUID": VOLUME}
    run_job(job(tmp_path, ontap=spec_settings), tmp_path / "lake", env=env)
    assert {r["volume"] for r in entries(tmp_path / "lake")} == {VOLUME}
    missing = run_job(job(tmp_path), tmp_path / "x", env={"NASLAKE_ONTAP_URL": s.url}, check_codes=(2,))
    assert "NASLAKE_ONTAP_PASSWORD" in missing.stdout + missing.stderr


@pytest.mark.skipif(not MOTO, reason="needs moto server: run scripts/test")
def test_credentials_from_a_secrets_manager_secret(standin, tmp_path):
    import boto3
    s = standin({"/": TREE["/"]})
    sm = boto3.client("secretsmanager", endpoint_url=MOTO, aws_access_key_id="testing",
                      aws_secret_access_key="testing", region_name="us-east-1")
    name = f"naslake/ontap-{uuid.uuid4().hex[:6]}"
    sm.create_secret(Name=name, SecretString=json.dumps({"username": USER, "password": PASSWORD}))
    aws = {"AWS_ENDPOINT_URL": MOTO, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_REGION": "us-east-1"}
    env = s.env(NASLAKE_ONTAP_USERNAME=None, NASLAKE_ONTAP_PASSWORD=None, NASLAKE_ONTAP_SECRET_ID=name, **aws)
    for k in ("NASLAKE_ONTAP_USERNAME", "NASLAKE_ONTAP_PASSWORD"):
        env[k] = ""
    run = run_job(job(tmp_path), tmp_path / "lake", env=env)
    assert len(entries(tmp_path / "lake")) == 3
    assert PASSWORD not in run.stdout + run.stderr
    bad = dict(env, NASLAKE_ONTAP_SECRET_ID="naslake/no-such")
    run = run_job(job(tmp_path), tmp_path / "x", env=bad, check_codes=(1, 2))
    assert "naslake/no-such" in run.stdout + run.stderr


@pytest.mark.skipif(not MOTO, reason="needs moto server: run scripts/test")
def test_paths_from_an_access_point_listing_map_under_the_listing_root(standin, tmp_path):
    import boto3
    tree = {"/": TREE["/"], "/share": TREE["/hr"], "/share/a.txt": TREE["/public"], "/share/sub/b.txt": TREE["/deny.txt"]}
    s = standin(tree)
    s3 = boto3.client("s3", endpoint_url=MOTO, aws_access_key_id="testing", aws_secret_access_key="testing",
                      region_name="us-east-1")
    bucket = f"acl-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    for k in ("a.txt", "sub/b.txt", "missing.txt"):
        s3.put_object(Bucket=bucket, Key=f"vol/{k}", Body=b"x")
    aws = {"AWS_ENDPOINT_URL": MOTO, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}
    spec = job(tmp_path, ontap='listing_root = "/share"', source='enumerate = "listing"')
    lake = tmp_path / "lake"
    run_job(spec, lake, "--input", f"s3://{bucket}/vol", env=s.env(**aws))
    assert {r["path"] for r in entries(lake)} == {"/share/a.txt", "/share/sub/b.txt"}
    assert set(rejects(lake)) == {"/share/missing.txt"}


def test_the_request_bound_holds_at_any_setting(standin, tmp_path):
    tree = {"/": TREE["/"], **{f"/f{i}": TREE["/many/f0.dat"] for i in range(60)}}
    s = standin(tree, latency_ms=30)
    run_job(job(tmp_path, ontap="max_in_flight = 7"), tmp_path / "lake", env=s.env())
    stats = s.stats()
    assert stats["requests"] >= 62
    assert 2 <= stats["max_in_flight"] <= 7


def test_depth_and_count_limits_and_hostile_links(standin, tmp_path):
    tree = {"/": TREE["/"], "/a": {"type": "directory", "perm": ntfs(acls=[ADMIN_FULL])},
            "/a/b": {"type": "directory", "perm": ntfs(acls=[ADMIN_FULL])},
            "/a/b/deep.txt": {"type": "file", "perm": ntfs(acls=[ADMIN_FULL])},
            "/away": {"type": "directory", "next_href": "https://elsewhere.example/api/x", "perm": ntfs(acls=[ADMIN_FULL])},
            "/circle": {"type": "directory", "next_href": f"/api/storage/volumes/{VOLUME}/files/circle?fields=name,type&max_records=3",
                        "perm": ntfs(acls=[ADMIN_FULL])},
            "/slow.txt": {"type": "file", "delay": 3, "perm": ntfs(acls=[ADMIN_FULL])}}
    s = standin(tree)
    lake = tmp_path / "lake"
    run_job(job(tmp_path, ontap="timeout_secs = 1\nmax_retries = 1", source="max_depth = 2"), lake, env=s.env())
    r = rejects(lake)
    assert r["/a/b"][0] == "walk" and "max_depth" in r["/a/b"][2]       # collected, not descended
    assert r["/away"][0] == "walk" and "not followed" in r["/away"][2]  # a link off the filer
    assert r["/circle"][0] == "walk" and "already gave" in r["/circle"][2]
    assert r["/slow.txt"][:2] == ("permissions", None) and "timed out" in r["/slow.txt"][2]
    paths = {e["path"] for e in entries(lake)}
    assert {"/", "/a", "/a/b", "/away", "/circle"} <= paths and "/a/b/deep.txt" not in paths
    too_many = run_job(job(tmp_path, source="max_paths = 3"), tmp_path / "x", env=s.env(), check_codes=(1, 2))
    assert "max_paths (3)" in too_many.stdout + too_many.stderr


# ---- POSIX ----------------------------------------------------------------------

def getfacl(path):
    """(tag, qualifier, perms) of `getfacl -n`, access and default, in its order."""
    out = subprocess.run(["getfacl", "-n", "-p", "-c", str(path)], capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        parts = line.split(":")
        default = parts[0] == "default"
        if default:
            parts = parts[1:]
        rows.append((default, parts[0], parts[1], parts[2]))
    return rows


def posix_job(tmp):
    return job(tmp, source='collect = "posix"', name="acl_posix")


@pytest.fixture
def posix_tree(tmp_path):
    if not shutil.which("setfacl"):
        pytest.skip("needs setfacl (Debian's acl package; scripts/test installs it)")
    root = tmp_path / "share"
    (root / "hr").mkdir(parents=True)
    (root / "hr" / "pay.csv").write_text("x")
    (root / "drop").mkdir()
    (root / "tmp").mkdir()
    (root / "bin").mkdir()
    (root / "bin" / "tool").write_text("#!/bin/sh\n")
    (root / "plain.txt").write_text("x")
    os.symlink("plain.txt", root / "link")
    (root / "ctl\u0001name").write_text("x")
    with open(os.path.join(os.fsencode(root), b"\xff\xfe.bin"), "w") as f:  # not UTF-8
        f.write("x")
    os.chmod(root / "drop", 0o777)
    os.chmod(root / "tmp", 0o1777)
    os.chmod(root / "bin" / "tool", 0o4755)
    os.chmod(root / "plain.txt", 0o644)
    os.chmod(root / "hr" / "pay.csv", 0o640)
    subprocess.run(["setfacl", "-m", "u:1234:rw-,g:2345:r--", str(root / "hr" / "pay.csv")], check=True)
    subprocess.run(["setfacl", "-d", "-m", "u::rwx,g::r-x,o::---,g:2345:r-x", str(root / "hr")], check=True)
    return root


def test_posix_entries_are_what_getfacl_reads(posix_tree, tmp_path):
    lake = tmp_path / "lake"
    run_job(posix_job(tmp_path), lake, "--input", posix_tree)
    rows = entries(lake)
    by_path = {}
    for r in rows:
        by_path.setdefault(r["path"], []).append(r)
    tag_of = {"owner": "user", "user": "user", "owning_group": "group", "group": "group", "mask": "mask",
              "everyone": "other"}
    # Names naslake never asks about are rejects, keyed with their bytes encoded.
    r = rejects(lake)
    assert r["/ctl%01name"][0] == "walk" and "control character" in r["/ctl%01name"][2]
    assert r["/%FF%FE.bin"][0] == "walk" and "UTF-8" in r["/%FF%FE.bin"][2]
    assert not any("ctl" in p or ".bin" in p or "\ufffd" in p for p in by_path)
    for path, got in by_path.items():
        local = posix_tree / path.lstrip("/")
        if local.is_symlink():
            assert [r["object_type"] for r in got] == ["symlink"]
            continue
        got = sorted(got, key=lambda r: r["entry_index"])
        want = getfacl(local)
        assert len(got) == len(want), (path, got, want)
        for r, (default, tag, qual, perms) in zip(got, want):
            assert tag_of[r["principal_kind"]] == tag, (path, r, tag)
            assert ("sub_folders" in r["apply_to"]) == default
            if qual:  # getfacl -n: the numeric uid or gid
                assert str(r["principal_id"]) == qual, (path, r, qual)
            rw = {"r--": "read", "r-x": "read_and_execute", "rw-": "modify", "rwx": "modify", "---": "none",
                  "-w-": "write", "-wx": "write", "--x": "special"}[perms]
            assert r["rights"] == rw, (path, r, perms)
    assert by_path["/tmp"][0]["sticky"] is True and by_path["/bin/tool"][0]["setuid"] is True
    assert {r["volume"] for r in rows} == {str(posix_tree)} and {r["svm"] for r in rows} == {None}
    f = findings(lake)
    assert ("world_writable", "high", "/drop", "other", None) in f
    assert not any(x[0] == "world_writable" and x[2] == "/tmp" for x in f)
    assert ("setuid_setgid", "medium", "/bin/tool", "root", None) in f
    assert any(x[0] == "orphaned_sid" and x[3] == "1234" for x in f)  # uid 1234 has no name here
    assert not any(x[0] == "broad_access" and x[2] == "/plain.txt" for x in f)  # other r-- on a non-sensitive path
    # other r-x on /hr, a sensitive path: read access for everyone.
    assert ("broad_access", "medium", "/hr", "other", "read_and_execute") in f


def test_a_missing_posix_root_is_a_clear_error(tmp_path):
    run = run_job(posix_job(tmp_path), tmp_path / "lake", "--input", tmp_path / "nope", check_codes=(1, 2))
    assert "not a directory" in run.stdout + run.stderr
