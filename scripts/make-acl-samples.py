"""Makes samples/acl/ontap-recording.json: the answers an ONTAP filer gives for a
small invented share, recorded from the stand-in (tests/ontap_standin.py) while
naslake walks it, so that jobs/acl.toml replays them with no filer; and
samples/acl/directory.ldif, the invented directory (an `ldifde` export) the job
reads as its identities. The share is the test suite's known tree
(tests/test_acl.py TREE) without the paths that only exercise retries, with three
SMB shares and the SVM's usual local groups, so every rule of
jobs/acl_findings.sql fires on the samples and the rejects table has a vanished,
a denied and an unlistable path.

Run: scripts/make-acl-samples.py (needs the naslake build and the test venv:
     source scripts/lib/env.sh; ensure_venv; "$VENV/bin/python" scripts/make-acl-samples.py)
"""
import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from acl_directory import Directory, write_ldif  # noqa: E402
from test_acl import TREE, Standin  # noqa: E402

OUT = ROOT / "samples" / "acl" / "ontap-recording.json"
LDIF = ROOT / "samples" / "acl" / "directory.ldif"

# The names TREE's entries use (CORP\HR-Team, alice, the bare SIDs under
# S-1-5-21-1-2-3): carol is disabled and in HR-Team (disabled_account_access);
# frank is in HR-Team three groups down (deep_nesting); erin is the bare SID
# S-1-5-21-1-2-3-1107 on /hr/pay.xlsx; dave is a domain admin, an administrator
# of the SVM through its local group.
D = Directory(domain_sid="S-1-5-21-1-2-3")
D.group("Domain Users", rid=513)
D.group("Domain Admins", rid=512, members=["dave"])
D.group("HR-Team", rid=1201, members=["alice", "carol", "Contractors"])
D.group("Finance-Team", rid=1202, members=["bob"])
D.group("Contractors", rid=1203, members=["Temps"])
D.group("Temps", rid=1204, members=["frank"])
for sam, rid, extra in (("alice", 1101, {}), ("bob", 1102, {}), ("carol", 1103, {"disabled": True}),
                        ("dave", 1104, {}), ("frank", 1105, {}), ("erin", 1107, {})):
    D.user(sam, rid, **extra)
SVM_LISTS = {
    "local_groups": [
        {"name": "BUILTIN\\Administrators", "sid": "S-1-5-32-544", "members": [{"name": "CORP\\Domain Admins"}]},
        {"name": "BUILTIN\\Users", "sid": "S-1-5-32-545", "members": [{"name": "CORP\\Domain Users"}]},
    ],
    "unix_groups": [{"name": "eng", "id": 1001, "users": [{"name": "svc"}]}],
    # An SMB share over a UNIX-style folder grants what no NTFS entry does
    # (share_wider_than_ntfs); the other two cap what NTFS allows.
    "shares": [
        {"name": "hr", "path": "/vol1/hr", "acls": [
            {"user_or_group": "Everyone", "permission": "change", "type": "windows"}]},
        {"name": "public", "path": "/vol1/public", "acls": [
            {"user_or_group": "Everyone", "permission": "full_control", "type": "windows"}]},
        {"name": "unix", "path": "/vol1/unix", "acls": [
            {"user_or_group": "Everyone", "permission": "full_control", "type": "windows"}]},
    ],
}
# Paths that only exercise retries, or a filer that quotes credentials.
RETRIES_ONLY = {"/flaky.txt", "/busy.txt", "/down.txt", "/echo.txt"}


def main():
    tree = {p: n for p, n in TREE.items() if p not in RETRIES_ONLY}
    job = (ROOT / "jobs" / "acl.toml").read_text().replace('replay = "ontap-recording.json"\n', "")
    with tempfile.TemporaryDirectory() as d:
        d = pathlib.Path(d)
        spec = d / "acl.toml"
        write_ldif(D, LDIF)
        spec.write_text(job.replace('input = "../samples/acl"\n', "").replace('"../', f'"{ROOT}/')
                        .replace('sql = "', f'sql = "{ROOT}/jobs/')
                        .replace('identities = "directory.ldif"', f'identities = "{LDIF}"'))
        recording = d / "recording.json"
        s = Standin(d, tree, record=recording, svm_lists=SVM_LISTS)
        try:
            env = dict(os.environ, **s.env(NASLAKE_ONTAP_URL=s.url))
            for k in ("NASLAKE_ONTAP_SVM_UUID", "NASLAKE_ONTAP_VOLUME_UUID"):
                env.pop(k)  # the job's own
            run = subprocess.run([os.environ.get("NASLAKE_BIN", str(ROOT / "target/debug/naslake")), "run",
                                  str(spec), "--output", str(d / "lake")], env=env, capture_output=True, text=True)
            if run.returncode not in (0, 3):
                raise SystemExit(f"naslake failed:\n{run.stdout}\n{run.stderr}")
        finally:
            s.stop()
        answers = json.loads(recording.read_text())
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(answers, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    print(f"{OUT.relative_to(ROOT)}: {len(answers['answers'])} answers; {LDIF.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
