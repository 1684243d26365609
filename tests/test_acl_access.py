"""Who can actually reach what (issue 30): the ACL job with a directory export
(LDIF), the SVM's shares, local and UNIX groups from the ONTAP stand-in, checked
against an independent oracle (tests/acl_directory.py) of the README's "Who can
reach what": acl_effective_access and acl_memberships row for row, acl_principals,
acl_shares, the new acl_findings rules, and bad input (a broken LDIF line, an
objectSid that does not decode, too many rows). Output is read with DuckDB."""
import collections
import datetime
import hashlib
import json
import pathlib
import re
import uuid

import pytest

from acl_directory import (AUTHENTICATED, EVERYONE, SHARE, Directory, Membership, expected_findings, expected_principals,
                           filetime, from_filetime, ldif_text, oracle, read_ldif, text_sid, write_ldif)
from conftest import ROOT, duck_rows, naslake, run_job
from test_acl import SVM, VOLUME, Standin, ace, ntfs, unix

OTHER_SVM = "5f3c4a1e-0000-4000-8000-0000000000ff"
JUNCTION = "/vol1"
SENSITIVE = ["/hr"]
UTC = datetime.timezone.utc

# ---- The directory ----------------------------------------------------------------
# Users sit deep enough in the tree that their DNs (and the member lines naming
# them) are folded; one user and one group have non-ASCII common names (base64).

D = Directory()
DEEP = "Staff,OU=Head Office,OU=Accounts"
D.group("Domain Users", rid=513)                      # everyone's primary group: no member lines
D.group("Domain Admins", rid=512, members=["dave"])
D.group("HR-Team", rid=1201, members=["alice", "carol", "CN=Old Timer,OU=Departed,DC=corp,DC=example,DC=com"])
# bob → Payroll-Clerks → Payroll-Staff → HR-Readers; erin → Temps → Contractors → Payroll-Clerks → …
D.group("HR-Readers", rid=1202, members=["Payroll-Staff"])
D.group("Payroll-Staff", rid=1203, members=["Payroll-Clerks"])
D.group("Payroll-Clerks", rid=1204, members=["bob", "Contractors"])
D.group("Contractors", rid=1205, members=["Temps"])
D.group("Temps", rid=1206, members=["erin"])
# A cycle: Cycle-A holds Cycle-B, which holds Cycle-A.
D.group("Cycle-A", rid=1207, members=["frank", "Cycle-B"])
D.group("Cycle-B", rid=1208, members=["Cycle-A"])
D.group("Omada", rid=1209, cn="Ομάδα Έργου", members=["lilei"])
D.group("Auditors", rid=1210)                         # heidi is in it by her memberOf alone
D.user("alice", 1101, ou=DEEP, last_logon=filetime(datetime.datetime(2026, 5, 4, 8, 30, 15, tzinfo=UTC)))
D.user("bob", 1102, ou=DEEP, last_logon=filetime(datetime.datetime(2026, 4, 28, 17, 2, 3, tzinfo=UTC)))
D.user("carol", 1103, ou=DEEP, disabled=True, last_logon=filetime(datetime.datetime(2025, 11, 30, 9, 0, 0, tzinfo=UTC)))
D.user("dave", 1104, ou=DEEP)
D.user("erin", 1105, ou=DEEP)
D.user("frank", 1106, ou=DEEP)
D.user("lilei", 1107, cn="李雷", ou=DEEP)
D.user("grace", 1108, ou=DEEP)
D.user("heidi", 1109, ou=DEEP, member_of=["Auditors"])
DOMAIN_SID = D.domain_sid


def sid(rid):
    return f"{DOMAIN_SID}-{rid}"


LOCAL_GROUPS = [
    {"name": "BUILTIN\\Administrators", "sid": "S-1-5-32-544", "members": [{"name": "CORP\\Domain Admins"}]},
    {"name": "BUILTIN\\Users", "sid": "S-1-5-32-545", "members": [{"name": "CORP\\Domain Users"}]},
    {"name": "BUILTIN\\Backup Operators", "sid": "S-1-5-32-551", "members": [{"name": "CORP\\grace"}]},
    {"name": "BUILTIN\\Guests", "sid": "S-1-5-32-546", "members": []},
]
UNIX_GROUPS = [
    {"name": "eng", "id": 1001, "users": [{"name": "alice"}, {"name": "bob"}]},
    {"name": "hr", "id": 1002, "users": [{"name": "carol"}]},
    {"name": "wheel", "id": 10, "users": [{"name": "root"}]},
    {"name": "nobody", "id": 65534, "users": []},
]

# ---- The shares -------------------------------------------------------------------
SHARES = [
    {"name": "root", "path": "/vol1", "acls": [
        {"user_or_group": "CORP\\Domain Admins", "sid": sid(512), "permission": "full_control", "type": "windows"},
        {"user_or_group": "NT AUTHORITY\\Authenticated Users", "permission": "change", "type": "windows"}]},
    # Two shares over one folder, with different permissions.
    {"name": "hr", "path": "/vol1/hr", "acls": [
        {"user_or_group": "Everyone", "permission": "full_control", "type": "windows"}]},
    {"name": "hr-ro", "path": "/vol1/hr", "acls": [
        {"user_or_group": "CORP\\Contractors", "permission": "no_access", "type": "windows"},
        {"user_or_group": "Everyone", "permission": "read", "type": "windows"},
        {"user_or_group": "hr", "permission": "full_control", "type": "unix_group"}]},
    {"name": "payroll", "path": "/vol1/hr/payroll", "acls": [
        {"user_or_group": "CORP\\Payroll-Staff", "sid": sid(1203), "permission": "full_control", "type": "windows"}]},
    # Wider than any NTFS entry under /projects (Everyone full control): a finding.
    {"name": "projects", "path": "/vol1/projects", "acls": [
        {"user_or_group": "Everyone", "permission": "full_control", "type": "windows"},
        {"user_or_group": "CORP\\Omada", "permission": "change", "type": "windows"}]},
    {"name": "projects-closed", "path": "/vol1/projects"},  # no entries: nobody connects
    # Out of canonical order: the denial listed after the allow still comes first.
    {"name": "projects-ro", "path": "/vol1/projects", "acls": [
        {"user_or_group": "Everyone", "permission": "read", "type": "windows"},
        {"user_or_group": "CORP\\Omada", "permission": "no_access", "type": "windows"}]},
    # Not in the volume: another junction, a name that only starts like it, another SVM.
    {"name": "archive", "path": "/vol2/archive", "acls": [
        {"user_or_group": "Everyone", "permission": "full_control", "type": "windows"}]},
    {"name": "backup", "path": "/vol1backup/hr", "acls": [
        {"user_or_group": "Everyone", "permission": "full_control", "type": "windows"}]},
    {"name": "elsewhere", "path": "/vol1/hr", "svm_uuid": OTHER_SVM, "acls": [
        {"user_or_group": "Everyone", "permission": "full_control", "type": "windows"}]},
]

# ---- The tree ---------------------------------------------------------------------
ADMIN_FULL = ace("BUILTIN\\Administrators", "full_control")
HERE = ("this_folder",)


def inh(a):
    return dict(a, inherited=True)


TREE = {
    "/": {"type": "directory", "perm": ntfs(acls=[ADMIN_FULL, ace("CREATOR OWNER", "full_control", apply=("sub_folders", "files")),
                                                  ace("Everyone", "read_and_execute")])},
    # Protected (0x9004); HR-Readers reaches bob three groups deep, erin five.
    "/hr": {"type": "directory", "perm": ntfs(flags="0x9004", acls=[
        ADMIN_FULL, ace("CORP\\HR-Team", "modify"), ace("CORP\\HR-Readers", "read_and_execute"), ace("Everyone", "read")])},
    # alice by name; no Administrators entry: dave has only the owner's implicit rights.
    "/hr/pay.xlsx": {"type": "file", "perm": ntfs(acls=[
        ace("CORP\\alice", "full_control", apply=HERE), ace("CORP\\HR-Team", "modify", inherited=True, apply=HERE),
        ace("CORP\\HR-Readers", "read_and_execute", inherited=True, apply=HERE)])},
    # A deny for Contractors, a group erin is in through Temps: what Payroll-Staff
    # allows after it is read and execute for her, modify for bob.
    "/hr/payroll": {"type": "directory", "perm": ntfs(acls=[
        ace("CORP\\Contractors", access="access_deny",
            advanced=["write_data", "append_data", "write_ea", "write_attr", "delete", "delete_child"]),
        ace("CORP\\Payroll-Staff", "modify"),
        inh(ADMIN_FULL), ace("CORP\\HR-Team", "modify", inherited=True), ace("CORP\\HR-Readers", "read_and_execute", inherited=True),
        ace("Everyone", "read", inherited=True)])},
    # Owned by grace, no OWNER RIGHTS entry: read control and write DAC before any entry.
    "/hr/payroll/2024.xlsx": {"type": "file", "perm": ntfs(owner="CORP\\grace", acls=[
        ace("CORP\\Payroll-Staff", "modify", inherited=True, apply=HERE), inh(ADMIN_FULL),
        ace("Everyone", "read", inherited=True, apply=HERE)])},
    # Owned by grace with an OWNER RIGHTS entry: the owner gets what it says (read
    # control), not write DAC.
    "/hr/owner-rights.docx": {"type": "file", "perm": ntfs(owner="CORP\\grace", acls=[
        ace("OWNER RIGHTS", advanced=["read_perm"], apply=HERE), ADMIN_FULL, ace("CORP\\HR-Team", "modify", apply=HERE),
        ace("Everyone", "read", apply=HERE)])},
    # Owned by bob, named by his SID.
    "/hr/sid-owner.txt": {"type": "file", "perm": ntfs(owner=sid(1102), acls=[ace("Everyone", "read", apply=HERE)])},
    # An empty DACL: nothing for anyone (its owner, SYSTEM, is nobody's token).
    "/hr/empty": {"type": "directory", "perm": ntfs(owner="NT AUTHORITY\\SYSTEM", acls=[])},
    # A null DACL: every right for every user.
    "/hr/null-dacl.txt": {"type": "file", "perm": ntfs(flags="0x8000", acls=[])},
    # HR-Team's full control only applies to children: skipped here.
    "/hr/inherit-only": {"type": "directory", "perm": ntfs(acls=[
        ADMIN_FULL, ace("CORP\\HR-Team", "full_control", apply=("sub_folders", "files")), ace("Everyone", "read")])},
    # Auditors by bare SID; heidi is in it by her memberOf.
    "/hr/audit.log": {"type": "file", "perm": ntfs(acls=[ace(sid(1210), "read_and_execute", apply=HERE), ADMIN_FULL])},
    # A user the directory does not know.
    "/hr/ghost.txt": {"type": "file", "perm": ntfs(acls=[ADMIN_FULL, ace("CORP\\ghost", "modify", apply=HERE),
                                                          ace("Everyone", "read", apply=HERE)])},
    "/hr/cycle": {"type": "directory", "perm": ntfs(acls=[ADMIN_FULL, ace("CORP\\Cycle-B", "modify")])},
    # A name in another case.
    "/hr/omada.txt": {"type": "file", "perm": ntfs(acls=[ace("corp\\OMADA", "modify", apply=HERE), ADMIN_FULL])},
    # Domain Users only by primaryGroupID; BUILTIN\Users holds it.
    "/hr/domain-users.txt": {"type": "file", "perm": ntfs(acls=[ace("CORP\\Domain Users", "read", apply=HERE),
                                                                ace("BUILTIN\\Users", "write", apply=HERE)])},
    # Not sensitive: only with effective_access = "all".
    "/public": {"type": "directory", "perm": ntfs(acls=[ADMIN_FULL, ace("Everyone", "modify")])},
    "/public/readme.txt": {"type": "file", "perm": ntfs(acls=[ace("Everyone", "modify", inherited=True, apply=HERE)])},
    # Owned by lilei; Authenticated Users and Omada decide as many rights each: the
    # first gives via.
    "/projects": {"type": "directory", "perm": ntfs(owner="CORP\\lilei", acls=[
        ace("NT AUTHORITY\\Authenticated Users", "read_and_execute"), ace("CORP\\Omada", "modify")])},
    "/projects/plan.txt": {"type": "file", "perm": ntfs(acls=[
        ace("CORP\\Omada", "modify", inherited=True, apply=HERE),
        ace("NT AUTHORITY\\Authenticated Users", "read_and_execute", inherited=True, apply=HERE)])},
    "/legacy": {"type": "directory", "perm": ntfs(flags="0x8000", acls=[])},
    "/unix": {"type": "directory", "perm": unix(0o755)},
    "/unix/tool": {"type": "file", "perm": unix(0o755)},
}


def expect(mode="sensitive", directory=D, tree=TREE, identity_domain=None):
    want = oracle(tree, directory, SHARES, LOCAL_GROUPS, junction=JUNCTION, identity_domain=identity_domain,
                  sensitive=SENSITIVE, mode=mode, svm=SVM)
    # A UNIX user is in the UNIX groups that name it (depth 1), and nothing else.
    want.memberships |= {Membership(u["name"], None, g["name"], None, 1, (g["name"],))
                         for g in UNIX_GROUPS for u in g["users"]}
    return want


# ---- Running the job --------------------------------------------------------------

def access_standin(tmp, tree, shares=SHARES, local_groups=LOCAL_GROUPS, unix_groups=UNIX_GROUPS):
    """test_acl's stand-in, with the SVM's shares, local groups and UNIX groups."""
    return Standin(tmp, tree, junction=JUNCTION,
                   svm_lists={"shares": shares, "local_groups": local_groups, "unix_groups": unix_groups})


def access_job(tmp, source="", name="acl_access", input_dir=None, identities='identities = "directory.ldif"'):
    """The job spec: every ACL table, the identities under the job's input (or
    what `identities` says instead: an `[sources.acl.ldap]` table, say)."""
    tables = "".join(f"""
[tables.{t}]
schema = "{ROOT}/schemas/{t}.toml"
sql = "{ROOT}/jobs/{t}.sql"
mode = "overwrite-partitions"
""" for t in ("acl_shares", "acl_principals", "acl_memberships", "acl_effective_access"))
    spec = f"""
name = "{name}"
input = "{input_dir or pathlib.Path(tmp) / 'input'}"
[sources.acl]
format = "acl"
collect = "ontap"
sensitive = {json.dumps(SENSITIVE)}
{source}
{identities}
[sources.acl.ontap]
page_size = 3
max_retries = 2
max_in_flight = 4
[tables.acl_entries]
schema = "{ROOT}/schemas/acl_entries.toml"
mode = "overwrite-partitions"
{tables}
[tables.acl_rejects]
schema = "{ROOT}/schemas/acl_rejects.toml"
from = "rejects"
mode = "overwrite"
[tables.acl_findings]
schema = "{ROOT}/schemas/acl_findings.toml"
sql = "{ROOT}/jobs/acl_findings.sql"
mode = "overwrite-partitions"
"""
    p = pathlib.Path(tmp) / f"{name}-{uuid.uuid4().hex[:6]}.toml"
    p.write_text(spec)
    return p


def run_access(tmp, standin, ldif=None, source='effective_access = "sensitive"', style="ldifde", crlf=False,
               directory=D, lake=None, **kw):
    """Writes the directory (or the given LDIF text) to a fresh input and runs the job."""
    tmp = pathlib.Path(tmp)
    input_dir = tmp / f"input-{uuid.uuid4().hex[:6]}"
    input_dir.mkdir()
    if ldif is None:
        write_ldif(directory, input_dir / "directory.ldif", style=style, crlf=crlf)
    else:
        (input_dir / "directory.ldif").write_bytes(ldif.encode("utf-8") if isinstance(ldif, str) else ldif)
    lake = lake or tmp / f"lake-{uuid.uuid4().hex[:6]}"
    run = run_job(access_job(tmp, source=source, input_dir=input_dir), lake, env=standin.env(), **kw)
    return run, lake


ACCESS_COLS = ["path", "share", '"user"', "user_sid", "access_mask", "via", "account_disabled", "rights", "sensitive"]


def access_rows(lake):
    from acl_directory import AccessRow
    return {AccessRow(p, s, u, us, m, tuple(v), d, r, sens)
            for p, s, u, us, m, v, d, r, sens in duck_rows(lake, "acl_effective_access", ACCESS_COLS)}


def membership_rows(lake):
    from acl_directory import Membership
    return {Membership(u, us, g, gs, d, tuple(c))
            for u, us, g, gs, d, c in duck_rows(lake, "acl_memberships",
                                                  ['"user"', "user_sid", '"group"', "group_sid", "depth", "chain"])}


def principal_rows(lake):
    cols = ["name", "sid", "kind", "origin", "dn", "disabled", "last_logon", "in_cycle"]
    return [dict(zip(cols, r)) for r in duck_rows(lake, "acl_principals", cols)]


def new_findings(lake):
    rules = ("disabled_account_access", "share_wider_than_ntfs", "deep_nesting")
    return collections.Counter(tuple(r) for r in duck_rows(lake, "acl_findings", ["rule_id", "severity", "path", "principal"])
                               if r[0] in rules)


def diff(got, want):
    """A readable account of how two sets differ (for assertion messages)."""
    missing = sorted(want - got, key=repr)
    extra = sorted(got - want, key=repr)
    return "\nmissing:\n  " + "\n  ".join(map(repr, missing[:40])) + "\nunexpected:\n  " + "\n  ".join(map(repr, extra[:40]))


def lake_state(lake):
    """What a run could change: the tables' data files (those a reader reads: no
    hidden segment) and the catalog, by content."""
    lake = pathlib.Path(lake)
    out = {}
    for p in sorted(lake.rglob("*")):
        rel = p.relative_to(lake).as_posix()
        table_file = rel.startswith("acl_") and not any(seg.startswith(("_", ".")) for seg in rel.split("/"))
        if p.is_file() and (table_file or rel.startswith("_naslake/catalog/")):
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def stand(tmp_path_factory):
    s = access_standin(tmp_path_factory.mktemp("standin"), TREE)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def sensitive_run(stand, tmp_path_factory):
    return run_access(tmp_path_factory.mktemp("sensitive"), stand)


@pytest.fixture(scope="module")
def all_run(stand, tmp_path_factory):
    return run_access(tmp_path_factory.mktemp("all"), stand, source='effective_access = "all"')


# ---- The oracle and the LDIF on their own (no naslake) -----------------------------

def test_the_scenario_is_one_the_rules_decide_without_ambiguity():
    """The oracle's own checks: no place the rules leave open (two shortest chains
    to a group, a share row whose via would differ from its NTFS row's, via through
    an OWNER RIGHTS entry), and the cases the scenario is there for."""
    for mode in ("sensitive", "all"):
        e = expect(mode)
        assert e.ambiguous == [], e.ambiguous
    e = expect("sensitive")
    by = {(r.path, r.share, r.user): r for r in e.access}
    C = "CORP\\"
    # The table in the module's report, spot-checked.
    assert by[("/hr", None, C + "alice")][4:6] == (0x1301BF, (C + "HR-Team",))
    assert by[("/hr", None, C + "bob")][4:6] == (0x1200A9, (C + "Payroll-Clerks", C + "Payroll-Staff", C + "HR-Readers"))
    assert len(by[("/hr", None, C + "erin")].via) == 5
    assert by[("/hr", None, C + "dave")][4:6] == (0x1F01FF, (C + "Domain Admins", "BUILTIN\\Administrators"))
    assert by[("/hr", None, C + "carol")].account_disabled is True
    assert by[("/hr/pay.xlsx", None, C + "dave")][4:6] == (0x60000, ())
    assert by[("/hr/payroll", None, C + "erin")][4:6] == (0x1200A9, (C + "Temps", C + "Contractors", C + "Payroll-Clerks", C + "Payroll-Staff"))
    assert by[("/hr/payroll", None, C + "bob")].access_mask == 0x1301BF
    assert ("/hr/payroll", "hr-ro", C + "erin") not in by          # no_access for Contractors
    assert by[("/hr/payroll", "hr-ro", C + "bob")].access_mask == 0x1200A9
    assert by[("/hr/payroll", "payroll", C + "bob")].access_mask == 0x1301BF
    assert ("/hr/payroll", "payroll", C + "alice") not in by
    assert by[("/hr/payroll/2024.xlsx", None, C + "grace")][4:6] == (0x160089, ("Everyone",))
    assert by[("/hr/owner-rights.docx", None, C + "grace")][4:6] == (0x120089, ("Everyone",))
    assert by[("/hr/sid-owner.txt", None, C + "bob")].access_mask == 0x160089
    assert not any(r.path == "/hr/empty" for r in e.access)
    assert {r.access_mask for r in e.access if r.path == "/hr/null-dacl.txt" and r.share is None} == {0x1F01FF}
    assert len({r.user for r in e.access if r.path == "/hr/null-dacl.txt"}) == 10
    assert by[("/hr/inherit-only", None, C + "alice")][4:6] == (0x120089, ("Everyone",))
    assert by[("/hr/audit.log", None, C + "heidi")][4:6] == (0x1200A9, (C + "Auditors",))
    assert by[("/hr/ghost.txt", None, C + "ghost")][3:7] == (None, 0x1301BF, (), None)
    assert ("/hr/domain-users.txt", None, C + "ghost") not in by
    assert by[("/hr/domain-users.txt", None, C + "frank")][4:6] == (0x12019F, (C + "Domain Users",))
    assert by[("/hr/cycle", None, C + "frank")][4:6] == (0x1301BF, (C + "Cycle-A", C + "Cycle-B"))
    assert by[("/hr/omada.txt", None, C + "lilei")][4:6] == (0x1301BF, (C + "Omada",))
    a = {(r.path, r.share, r.user): r for r in expect("all").access}
    assert a[("/projects", None, C + "lilei")][4:6] == (0x1701BF, (AUTHENTICATED[0],))
    assert not any(r.path.startswith("/unix") for r in a.values())
    assert all(r.share not in ("archive", "backup", "elsewhere") for r in a.values())


def test_the_ldif_writer_round_trips_folds_and_encodes():
    for style in ("ldifde", "ldapsearch"):
        for crlf in (False, True):
            text = ldif_text(D, style=style, crlf=crlf)
            lines = text.split("\r\n" if crlf else "\n")
            assert all(len(l.encode()) <= 76 for l in lines if not l.startswith("#")), style
            assert any(l.startswith(" ") for l in lines)  # something was folded
            assert text.isascii() or style == "ldapsearch"  # ldapsearch's comments may hold UTF-8
            assert ("changetype: add" in text) == (style == "ldifde")
            assert text.startswith("version: 1") == (style == "ldifde")
            records = read_ldif(text)
            assert len(records) == len(D.users) + len(D.groups)
            by_dn = {dict(r)["dn"]: r for r in records}
            lilei = dict(by_dn[f"CN=李雷,OU={DEEP},{D.base}"])
            assert text_sid(lilei["objectSid"]) == sid(1107) and lilei["cn"] == "李雷"
            omada = by_dn[f"CN=Ομάδα Έργου,OU=Groups,{D.base}"]
            assert [v for k, v in omada if k == "member"] == [f"CN=李雷,OU={DEEP},{D.base}"]
            carol = dict(by_dn[f"CN=carol,OU={DEEP},{D.base}"])
            assert carol["userAccountControl"] == "514"
            assert from_filetime(int(carol["lastLogonTimestamp"])) == datetime.datetime(2025, 11, 30, 9, tzinfo=UTC)
            hr = by_dn[f"CN=HR-Team,OU=Groups,{D.base}"]
            assert len([v for k, v in hr if k == "member"]) == 3
    assert "objectSid:: AQUAAAAAAAUVAAAA" in ldif_text(D).replace("\n ", "")


# ---- The job against the oracle ---------------------------------------------------

def test_effective_access_on_the_sensitive_paths_is_the_oracles(sensitive_run):
    run, lake = sensitive_run
    want = expect("sensitive").access
    got = access_rows(lake)
    assert got == want, diff(got, want)
    assert {r[0] for r in duck_rows(lake, "acl_effective_access", ["volume"])} == {VOLUME}


def test_effective_access_on_every_path_is_the_oracles(all_run):
    run, lake = all_run
    want = expect("all").access
    got = access_rows(lake)
    assert got == want, diff(got, want)
    assert {r.path for r in got} >= {"/", "/public", "/projects", "/legacy"}


def test_memberships_are_the_oracles(sensitive_run):
    run, lake = sensitive_run
    want = expect("sensitive").memberships
    got = membership_rows(lake)
    # Whether a user only an entry names (CORP\ghost) has rows is not said; if it
    # has, they are Everyone and Authenticated Users.
    ghost = {m for m in got if m.user == "CORP\\ghost"}
    assert ghost <= {("CORP\\ghost", None, EVERYONE[0], EVERYONE[1], 1, (EVERYONE[0],)),
                     ("CORP\\ghost", None, AUTHENTICATED[0], AUTHENTICATED[1], 1, (AUTHENTICATED[0],))}
    got -= ghost
    assert got == want, diff(got, want)
    # Spot checks of what the oracle says.
    m = {(x.user, x.group): x for x in got}
    assert m[("CORP\\erin", "CORP\\HR-Readers")][4:] == (5, ("CORP\\Temps", "CORP\\Contractors", "CORP\\Payroll-Clerks",
                                                               "CORP\\Payroll-Staff", "CORP\\HR-Readers"))
    assert m[("CORP\\alice", "CORP\\Domain Users")][3:] == (sid(513), 1, ("CORP\\Domain Users",))
    assert m[("CORP\\alice", "BUILTIN\\Users")][3:] == ("S-1-5-32-545", 2, ("CORP\\Domain Users", "BUILTIN\\Users"))
    assert m[("CORP\\frank", "CORP\\Cycle-B")][4:] == (2, ("CORP\\Cycle-A", "CORP\\Cycle-B"))
    assert ("CORP\\frank", "CORP\\frank") not in m and ("CORP\\frank", "CORP\\Cycle-A") in m
    assert m[("CORP\\heidi", "CORP\\Auditors")][4] == 1
    assert m[("CORP\\carol", "CORP\\HR-Team")][4] == 1  # a disabled account has the same token
    # UNIX groups are in no Windows user's token, only in the UNIX users'.
    assert {u for u, g in m if g in ("eng", "hr", "wheel", "nobody")} == {"alice", "bob", "carol", "root"}


def test_principals_are_the_directorys_the_svms_and_the_unresolved(sensitive_run):
    run, lake = sensitive_run
    rows = principal_rows(lake)
    everyone = {EVERYONE[1], AUTHENTICATED[1]}
    got = {(r["name"], r["sid"], r["kind"], r["origin"], r["disabled"], r["in_cycle"]) for r in rows
           if r["sid"] not in everyone}
    want = expected_principals(D, LOCAL_GROUPS, UNIX_GROUPS)
    # The UNIX users the UNIX groups name are principals too (only named as members).
    want |= {(u["name"], None, "user", "member", None, False) for g in UNIX_GROUPS for u in g["users"]}
    assert got == want, diff(got, want)
    by = {r["name"]: r for r in rows}
    assert by["CORP\\carol"]["disabled"] is True and by["CORP\\alice"]["disabled"] is False
    assert by["CORP\\Cycle-A"]["in_cycle"] is True and by["CORP\\Cycle-B"]["in_cycle"] is True
    assert by["CORP\\HR-Team"]["in_cycle"] is False
    old = "CN=Old Timer,OU=Departed,DC=corp,DC=example,DC=com"
    assert (by[old]["kind"], by[old]["origin"], by[old]["sid"]) == ("unresolved", "member", None)
    assert by["CORP\\lilei"]["dn"] == f"CN=李雷,OU={DEEP},{D.base}"
    assert by["CORP\\Omada"]["dn"] == f"CN=Ομάδα Έργου,OU=Groups,{D.base}"

    def utc(t):
        return t if t is None or t.tzinfo else t.replace(tzinfo=UTC)
    assert utc(by["CORP\\alice"]["last_logon"]) == datetime.datetime(2026, 5, 4, 8, 30, 15, tzinfo=UTC)
    assert by["CORP\\dave"]["last_logon"] is None
    assert by["BUILTIN\\Administrators"]["sid"] == "S-1-5-32-544"
    assert by["eng"]["origin"] == "unix_group"


def test_shares_are_the_volumes_with_their_paths_in_the_volume(sensitive_run):
    run, lake = sensitive_run
    cols = ["svm", "share", "share_path", "path", "entry_index", "principal", "principal_sid", "permission",
            "access_mask", "type"]
    got = {tuple(r) for r in duck_rows(lake, "acl_shares", cols)}
    known = {"everyone": "S-1-1-0", "nt authority\\authenticated users": "S-1-5-11"}
    known.update({f"corp\\{g.sam.lower()}": g.sid for g in D.groups})
    want = set()
    for name, folder, acls in expect().shares:
        share_path = next(s["path"] for s in SHARES if s["name"] == name)
        if not acls:
            want.add((SVM, name, share_path, folder, None, None, None, None, None, None))
        for i, a in enumerate(acls):
            principal_sid = a.get("sid") or (known.get(a["user_or_group"].lower()) if a["type"] == "windows" else None)
            want.add((SVM, name, share_path, folder, i, a["user_or_group"], principal_sid, a["permission"],
                      SHARE[a["permission"]], a["type"]))
    assert got == want, diff(got, want)
    assert {r[3] for r in got} == {"/", "/hr", "/hr/payroll", "/projects"}
    assert {r[0] for r in duck_rows(lake, "acl_shares", ["volume"])} == {VOLUME}


@pytest.mark.parametrize("which", ["sensitive", "all"])
def test_the_new_findings_fire_exactly_where_the_rows_say(which, request):
    run, lake = request.getfixturevalue(f"{which}_run")
    want = expected_findings(expect(which), TREE, SENSITIVE)
    got = new_findings(lake)
    assert got == want, f"\nmissing: {want - got}\nunexpected: {got - want}"
    # What the scenario is there for.
    assert want[("disabled_account_access", "high", "/hr", "CORP\\carol")] == 1
    assert not any(k[0] == "disabled_account_access" and not k[2].startswith("/hr") for k in want)
    assert want[("share_wider_than_ntfs", "low", "/projects", "Everyone")] == 1
    assert sum(1 for k in want if k[0] == "share_wider_than_ntfs") == 1
    assert want[("deep_nesting", "low", "/hr", "CORP\\bob")] == 1
    assert want[("deep_nesting", "low", "/hr/payroll", "CORP\\erin")] == 1
    assert ("deep_nesting", "low", "/hr/payroll", "CORP\\bob") not in want  # two levels


def test_an_ldapsearch_export_with_crlf_and_the_domain_given_reads_the_same(stand, tmp_path):
    run, lake = run_access(tmp_path, stand, style="ldapsearch", crlf=True,
                           source='effective_access = "sensitive"\nidentity_domain = "CORP"')
    want = expect("sensitive")
    got = access_rows(lake)
    assert got == want.access, diff(got, want.access)
    got = {m for m in membership_rows(lake) if m.user != "CORP\\ghost"}
    assert got == want.memberships, diff(got, want.memberships)


# ---- Bad input --------------------------------------------------------------------

def test_a_broken_ldif_line_fails_the_run_naming_it_and_changes_nothing(stand, tmp_path):
    ok, lake = run_access(tmp_path, stand)
    before = lake_state(lake)
    assert any(k.startswith("acl_effective_access/") for k in before)
    lines = ldif_text(D).split("\n")
    # Inside bob's record, after its objectClass lines: a line without a colon.
    at = next(i for i, l in enumerate(lines) if l.startswith("dn: CN=bob,")) + 3
    lines.insert(at, "this line has no colon")
    number = at + 1
    run, _ = run_access(tmp_path, stand, ldif="\n".join(lines), lake=lake, check_codes=(1,))
    said = run.stdout + run.stderr
    assert re.search(rf"(line {number}\b|directory\.ldif:{number}\b)", said), said
    assert lake_state(lake) == before


def test_a_missing_export_stops_the_run_before_the_walk_and_changes_nothing(stand, tmp_path):
    ok, lake = run_access(tmp_path, stand)
    before = lake_state(lake)
    asked = len(stand.stats()["paths"])
    empty_input = tmp_path / "no-export"
    empty_input.mkdir()
    spec = access_job(tmp_path, source='effective_access = "sensitive"', input_dir=empty_input)
    run = run_job(spec, lake, env=stand.env(), check_codes=(1,))
    said = run.stdout + run.stderr
    assert "`identities` directory.ldif under the input" in said, said[-2000:]
    # Checked before the walk: no path was asked about, and the lake is as it was.
    assert len(stand.stats()["paths"]) == asked
    assert lake_state(lake) == before


def test_an_objectsid_that_does_not_decode_keeps_the_principal_without_a_sid(stand, tmp_path):
    d = Directory()
    d.group("Domain Users", rid=513)
    d.group("HR-Team", rid=1201, members=["alice", "broken"])
    d.user("alice", 1101)
    d.user("broken", sid=b"\x01\x05\x00")  # 3 bytes: no SID
    run, lake = run_access(tmp_path, stand, directory=d)
    rows = {r["name"]: r for r in principal_rows(lake)}
    assert rows["CORP\\broken"]["sid"] is None and rows["CORP\\broken"]["kind"] == "user"
    assert rows["CORP\\broken"]["origin"] == "directory"
    assert rows["CORP\\alice"]["sid"] == d.sid_text(d.users[0])
    # Still a user with a token: HR-Team's modify on /hr reaches it.
    got = {(r.path, r.user, r.user_sid, r.access_mask, r.via) for r in access_rows(lake) if r.share is None}
    assert ("/hr", "CORP\\broken", None, 0x1301BF, ("CORP\\HR-Team",)) in got


def test_more_rows_than_effective_access_limit_stops_the_run(stand, tmp_path):
    assert len(expect("sensitive").access) > 5
    run, lake = run_access(tmp_path, stand, source='effective_access = "sensitive"\neffective_access_limit = 5',
                           check_codes=(1,))
    assert "effective_access_limit" in run.stdout + run.stderr
    state = lake_state(lake)
    assert not any(k.startswith("acl_effective_access/") for k in state)
    assert not any(k.startswith("_naslake/catalog/") and "/acl_" in k for k in state)  # nothing committed


# ---- The README's ad-hoc SQL -------------------------------------------------------

def readme_sql(title):
    """The README's ```sql block that starts with `-- TITLE`."""
    text = (ROOT / "README.md").read_text()
    for block in re.findall(r"```sql\n(.*?)```", text, re.S):
        if block.startswith(f"-- {title}\n"):
            return block
    raise AssertionError(f"README.md has no sql block `-- {title}`")


def query(lake, sql):
    out = naslake("query", "--catalog", f"local:{lake}", "--format", "json", "--", sql).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_the_readmes_athena_sql_answers_what_the_table_holds(all_run):
    """"Who can write PATH" and "what can USER read", as the README gives them for
    Athena, run through `naslake query` over the tables the job wrote, equal
    acl_effective_access for that right (users the directory knows)."""
    run, lake = all_run
    known = {r["user"] for r in query(lake, 'SELECT DISTINCT "user" FROM acl_memberships')}
    table = query(lake, 'SELECT path, share, "user", access_mask FROM acl_effective_access')
    write = readme_sql("who can write PATH")
    paths = sorted({r["path"] for r in table})
    assert len(paths) > 10
    for path in paths:
        got = {(r["user"], r.get("share")) for r in query(lake, write.replace("'/hr/pay.xlsx'", f"'{path}'"))}
        want = {(r["user"], r.get("share")) for r in table
                if r["path"] == path and r["access_mask"] & 2 and r["user"] in known}
        assert got == want, (path, diff(got, want))
    read = readme_sql("what can USER read")
    users = sorted(u for u in known if u.startswith("CORP\\"))
    for user in users:
        got = {r["path"] for r in query(lake, read.replace("'CORP\\alice'", f"'{user}'"))}
        want = {r["path"] for r in table if r["user"] == user and r.get("share") is None and r["access_mask"] & 1}
        assert got == want, (user, diff(got, want))
