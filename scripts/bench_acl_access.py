"""Benchmark body for scripts/bench-acl-access (see there): the ACL job's "who can
reach what" tables at scale (issue 30: 100,000 users in 20,000 groups and
1,000,000 entries within 1 GiB peak RSS).

The synthetic estate, seeded (the same numbers give the same data):

- The directory (LDIF, written by tests/acl_directory.py): USERS users, each
  directly in 3-5 of the leaf groups; GROUPS groups in five levels (80% leaves,
  then 16%, 3.2%, 0.64%, 0.16%), each group a member of one group of the level
  above and 5% of them of a second one too, so a user's token is up to ~25
  groups deep five levels; Domain Users by primaryGroupID, 20 Domain Admins, 2%
  of the accounts disabled, most with a lastLogonTimestamp.
- The SVM: the usual local groups (BUILTIN\\Administrators holding Domain
  Admins, BUILTIN\\Users holding Domain Users, …), a few UNIX groups, and four
  shares: the volume's root (Domain Admins full control, Authenticated Users
  change), two over the sensitive folder /s (Everyone full control, which is
  common, and a read-only one for one top-level group) and one open share over
  the first ordinary folder.
- The NTFS tree: PATHS paths with ten entries each (PATHS × 10 entries), in
  folders of 100 files under /aNN/bNNN; SENSITIVE_PERCENT of them under /s,
  the job's `sensitive`. Each folder has its own ACL (Administrators, CREATOR
  OWNER, SYSTEM, then groups of every level, Domain Users on half the ordinary
  folders, Everyone on a third, a deny entry on some); its files inherit it, some
  with a user named directly, a user the directory does not know, or a user as
  owner. On the sensitive folders only leaf and second-level groups (now and
  then a third-level one) are named, and Everyone reads one file in a thousand:
  what keeps "sensitive" well under the row limit.

naslake collects the tree from the ONTAP stand-in (tests/ontap_standin.py), so
the run's wall time includes the stand-in serving ~PATHS permission calls and a
listing per folder (each listing scans the whole tree: ~20 ms at 100,000 paths,
most of the stand-in's CPU in the walk). The stand-in's own CPU seconds and
request rate are printed beside naslake's, to tell whose time it is. naslake's
peak RSS and CPU come from wait4() on its process (the kernel's ru_maxrss); the
per-phase table samples /proc every 50 ms and cuts the run at the log's events
(paths found, directory read, each table written).

Measured figures, with the command that produced them, are in
docs/benchmarks.md ("Who can reach what at scale")."""
import datetime
import json
import os
import pathlib
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import duckdb

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from acl_directory import Directory, filetime, write_ldif  # noqa: E402
from test_acl import Standin, ace, ntfs  # noqa: E402

BIN = os.environ["NASLAKE_BIN"]
LIMIT = 10_000_000
ENTRIES_PER_PATH = 10
PER_FOLDER = 100          # files per folder
FOLDERS_PER_TOP = 20      # folders per top-level folder
LEVELS = (0.8, 0.16, 0.032, 0.0064, 0.0016)  # the groups of each nesting level
GIB = 1024  # MiB
KEEP = bool(os.environ.get("NASLAKE_BENCH_KEEP"))  # keep the inputs, lakes and logs

# The order naslake writes the tables in (acl_rejects is not logged when empty).
WRITE_ORDER = ("acl_entries", "acl_shares", "acl_principals", "acl_memberships", "acl_effective_access",
               "acl_findings")
TABLES = ("acl_entries", "acl_shares", "acl_principals", "acl_memberships", "acl_effective_access",
          "acl_findings", "acl_rejects")

JOB = """
name = "acl_bench"
input = "{input}"
[sources.acl]
format = "acl"
collect = "ontap"
sensitive = ["/s"]
group_names = ["corp\\\\grp-*"]
identities = "directory.ldif"
effective_access = "{mode}"
effective_access_limit = {limit}
[sources.acl.ontap]
page_size = 1000
max_in_flight = 16
[tables.acl_entries]
schema = "{root}/schemas/acl_entries.toml"
mode = "overwrite-partitions"
{access_tables}
[tables.acl_rejects]
schema = "{root}/schemas/acl_rejects.toml"
from = "rejects"
mode = "overwrite"
[tables.acl_findings]
schema = "{root}/schemas/acl_findings.toml"
sql = "{root}/jobs/acl_findings.sql"
mode = "overwrite-partitions"
"""


def job_text(input_dir, mode):
    access = "".join(f"""
[tables.{t}]
schema = "{ROOT}/schemas/{t}.toml"
sql = "{ROOT}/jobs/{t}.sql"
mode = "overwrite-partitions"
""" for t in ("acl_shares", "acl_principals", "acl_memberships", "acl_effective_access"))
    return JOB.format(input=input_dir, mode=mode, limit=LIMIT, root=ROOT, access_tables=access)


# ---- The directory ----------------------------------------------------------------

class Estate:
    """The directory's names, by level, for the tree to name."""

    def __init__(self, users, groups, rng):
        self.rng = rng
        self.d = Directory()
        d = self.d
        self.levels = []
        n = 0
        for i, share in enumerate(LEVELS):
            count = max(1, round(groups * share)) if i < len(LEVELS) - 1 else max(1, groups - n)
            self.levels.append([f"grp-L{i}-{j:05}" for j in range(count)])
            n += count
        dn = {}
        rid = 10_000
        for level in self.levels:
            for name in level:
                dn[name] = f"CN={name},OU=Groups,{d.base}"
        members = {name: [] for level in self.levels for name in level}
        # Each group of a level is a member of one group of the level above (spread
        # evenly), 5% of them of a second one.
        for lower, upper in zip(self.levels, self.levels[1:]):
            for j, name in enumerate(lower):
                parents = {upper[j % len(upper)]}
                if rng.random() < 0.05:
                    parents.add(rng.choice(upper))
                for p in parents:
                    members[p].append(dn[name])
        self.users = [f"u{j:06}" for j in range(users)]
        user_dn = {u: f"CN={u},OU=People,{d.base}" for u in self.users}
        leaves = self.levels[0]
        for u in self.users:
            for g in rng.sample(leaves, min(len(leaves), rng.randint(3, 5))):
                members[g].append(user_dn[u])
        admins = self.users[:20]
        d.group("Domain Users", rid=513)
        d.group("Domain Admins", rid=512, members=[user_dn[u] for u in admins])
        for level in self.levels:
            for name in level:
                rid += 1
                d.group(name, rid=rid, members=members[name])
        base = filetime(datetime.datetime(2026, 5, 1, tzinfo=datetime.timezone.utc))
        for j, u in enumerate(self.users):
            d.user(u, rid=200_000 + j, disabled=rng.random() < 0.02,
                   last_logon=base - rng.randrange(10**15) if rng.random() < 0.9 else None)
        self.domain_admins = admins

    def group(self, weights):
        """A group of a level drawn with `weights` (one per level)."""
        level = self.rng.choices(range(len(weights)), weights)[0]
        return "CORP\\" + self.rng.choice(self.levels[level])

    def user(self):
        return "CORP\\" + self.rng.choice(self.users)


LOCAL_GROUPS = [
    {"name": "BUILTIN\\Administrators", "sid": "S-1-5-32-544", "members": [{"name": "CORP\\Domain Admins"}]},
    {"name": "BUILTIN\\Users", "sid": "S-1-5-32-545", "members": [{"name": "CORP\\Domain Users"}]},
    {"name": "BUILTIN\\Backup Operators", "sid": "S-1-5-32-551", "members": [{"name": "CORP\\u000020"}]},
    {"name": "BUILTIN\\Guests", "sid": "S-1-5-32-546", "members": []},
]
UNIX_GROUPS = [
    {"name": "eng", "id": 1001, "users": [{"name": "u000001"}, {"name": "u000002"}]},
    {"name": "wheel", "id": 10, "users": [{"name": "root"}]},
    {"name": "nobody", "id": 65534, "users": []},
]


def shares(estate):
    top = "CORP\\" + estate.levels[-1][0]
    return [
        {"name": "root", "path": "/vol1", "acls": [
            {"user_or_group": "CORP\\Domain Admins", "permission": "full_control", "type": "windows"},
            {"user_or_group": "NT AUTHORITY\\Authenticated Users", "permission": "change", "type": "windows"}]},
        {"name": "secure", "path": "/vol1/s", "acls": [
            {"user_or_group": "Everyone", "permission": "full_control", "type": "windows"}]},
        {"name": "secure-ro", "path": "/vol1/s", "acls": [
            {"user_or_group": top, "permission": "read", "type": "windows"}]},
        {"name": "public", "path": "/vol1/a00", "acls": [
            {"user_or_group": "Everyone", "permission": "full_control", "type": "windows"}]},
    ]


# ---- The tree ---------------------------------------------------------------------

class Aces:
    """ACL entries in the stand-in's format, one dict per distinct entry (the tree
    holds a million of them)."""

    def __init__(self):
        self.made = {}

    def __call__(self, user, rights=None, access="access_allow", inherited=False,
                 apply=("this_folder", "sub_folders", "files")):
        key = (user, rights, access, inherited, apply)
        if key not in self.made:
            self.made[key] = ace(user, rights, access=access, inherited=inherited, apply=apply)
        return self.made[key]


RIGHTS = ("modify", "read_and_execute", "read", "write", "full_control")
RIGHT_WEIGHTS = (4, 4, 3, 1, 0.3)


def folder_acl(estate, aces, sensitive):
    """A folder's ten entries (explicit; its files inherit them)."""
    rng = estate.rng
    acl = [aces("BUILTIN\\Administrators", "full_control"),
           aces("CREATOR OWNER", "full_control", apply=("sub_folders", "files")),
           aces("NT AUTHORITY\\SYSTEM", "full_control")]
    weights = (5, 4, 1, 0, 0) if sensitive else (3, 3, 2, 1.5, 0.5)
    tail = []
    if not sensitive:
        if rng.random() < 0.5:
            tail.append(aces("CORP\\Domain Users", "read_and_execute"))
        r = rng.random()
        if r < 0.3:
            tail.append(aces("Everyone", "read"))
        elif r < 0.4:
            tail.append(aces("NT AUTHORITY\\Authenticated Users", "read"))
    deny = rng.random() < (0.1 if sensitive else 0.05)
    if deny:
        acl.insert(0, aces(estate.group((1, 0, 0, 0, 0)), "write", access="access_deny"))
    while len(acl) + len(tail) < ENTRIES_PER_PATH:
        acl.append(aces(estate.group(weights), rng.choices(RIGHTS, RIGHT_WEIGHTS)[0]))
    return acl + tail


def inherited(acl, aces):
    return [aces(a["user"], a.get("rights"), access=a["access"], inherited=True,
                 apply=tuple(k for k, v in a["apply_to"].items() if v)) for a in acl]


def build_tree(estate, paths, sensitive_percent):
    """{path: node} of `paths` paths, sensitive_percent of them under /s; and the
    number of sensitive paths."""
    rng = estate.rng
    aces = Aces()
    n_sensitive = max(1, round(paths * sensitive_percent / 100)) if sensitive_percent > 0 else 0
    tree = {"/": {"type": "directory", "perm": ntfs(acls=[
        aces("BUILTIN\\Administrators", "full_control"), aces("CREATOR OWNER", "full_control", apply=("sub_folders", "files")),
        aces("NT AUTHORITY\\SYSTEM", "full_control"), aces("CORP\\Domain Users", "read_and_execute"),
        *[aces(estate.group((0, 0, 0, 1, 1)), "read") for _ in range(ENTRIES_PER_PATH - 4)]])}}
    strangers = [f"CORP\\former-{i:03}" for i in range(3)]
    open_every = 1000  # one sensitive file in this many: Everyone may read it

    def fill(prefix, count, sensitive):
        """`count` paths under `prefix` (its top folders, folders and files)."""
        made, top, folder_i = 0, None, 0
        while made < count:
            if folder_i % FOLDERS_PER_TOP == 0:
                top = f"{prefix}/a{folder_i // FOLDERS_PER_TOP:02}"
                acl = folder_acl(estate, aces, sensitive)
                tree[top] = {"type": "directory", "perm": ntfs(acls=acl)}
                made += 1
            folder = f"{top}/b{folder_i:04}"
            folder_i += 1
            acl = folder_acl(estate, aces, sensitive)
            tree[folder] = {"type": "directory", "perm": ntfs(acls=acl, flags="0x9004" if rng.random() < 0.1 else "0x8004")}
            made += 1
            files = inherited(acl, aces)
            for k in range(PER_FOLDER):
                if made >= count:
                    break
                fa = files
                r = rng.random()
                if r < 0.10:    # a user by name, explicit, first
                    fa = [aces(estate.user(), "modify", apply=("this_folder",))] + files[:-1]
                elif r < 0.101:  # a user the directory does not know
                    fa = [aces(rng.choice(strangers), "read", apply=("this_folder",))] + files[:-1]
                if sensitive and made % open_every == 0:
                    fa = fa[:-1] + [aces("Everyone", "read", inherited=True)]
                owner = estate.user() if rng.random() < 0.05 else "BUILTIN\\Administrators"
                tree[f"{folder}/f{k:03}.dat"] = {"type": "file", "perm": ntfs(owner=owner, acls=fa)}
                made += 1

    if n_sensitive:
        tree["/s"] = {"type": "directory", "perm": ntfs(flags="0x9004", acls=folder_acl(estate, aces, True))}
        fill("/s", n_sensitive - 1, True)
    fill("", paths - len(tree), False)
    assert all(len(n["perm"]["acls"]) == ENTRIES_PER_PATH for n in tree.values())
    return tree, n_sensitive


# ---- Running and measuring --------------------------------------------------------

def proc_cpu(pid):
    """User + system CPU seconds of a running process (/proc/PID/stat)."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parquet(lake, table):
    """The table's data files as a DuckDB read_parquet() call, or None without any."""
    files = [str(f) for f in (lake / table).rglob("*.parquet")] if (lake / table).exists() else []
    return f"read_parquet({json.dumps(files)})" if files else None


def table_rows(lake, table):
    src = parquet(lake, table)
    return duckdb.connect().execute(f"SELECT count(*) FROM {src}").fetchone()[0] if src else 0


def findings_by_rule(lake):
    src = parquet(lake, "acl_findings")
    if not src:
        return {}
    return dict(duckdb.connect().execute(f"SELECT rule_id, count(*) FROM {src} GROUP BY 1 ORDER BY 2 DESC").fetchall())


def sample(pid, standin_pid, samples, done):
    """(time, naslake's VmRSS MiB, its CPU s, the stand-in's CPU s) every 50 ms,
    until `done` is set or naslake is gone."""
    status = pathlib.Path(f"/proc/{pid}/status")
    while not done.wait(0.05):
        try:
            rss = next(int(line.split()[1]) / 1024 for line in status.read_text().splitlines()
                       if line.startswith("VmRSS:"))
            samples.append((time.time(), rss, proc_cpu(pid), proc_cpu(standin_pid)))
        except (OSError, ValueError, StopIteration):
            return


def phases(log, samples, start, end):
    """[(what, seconds, peak VmRSS MiB, naslake CPU s, stand-in CPU s)] (None
    for a phase no sample fell in): the run cut at the log's events. "walk" ends when the paths were found; a table's phase ends when it
    was written; in a failed run the last phase is the table being written."""
    marks, written, failed = [], [], False
    for line in pathlib.Path(log).read_text(errors="replace").splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        msg = e.get("message")
        if "timestamp" not in e or msg not in ("ONTAP paths found", "table written", "directory read", "run finished"):
            continue
        at = datetime.datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp()
        if msg == "table written":
            name = e.get("table")
            written.append(name)
        elif msg == "run finished":
            failed = e.get("status") != "succeeded"
            name = "commit"
        else:
            name = {"ONTAP paths found": "walk", "directory read": "directory+shares"}[msg]
        marks.append((name, at))
    if failed or not marks or marks[-1][0] != "commit":
        following = [t for t in WRITE_ORDER if t not in written]
        marks = [m for m in marks if m[0] != "commit"]
        marks.append((f"{following[0] if following else 'the rest'} (failed)", end))
    out, last = [], start
    for name, at in marks:
        inside = [x for x in samples if last <= x[0] < at]
        peak = max((x[1] for x in inside), default=None)
        # CPU seconds in the phase: from the last sample before it to its last.
        before = [x for x in samples if x[0] < last]
        cpu = standin = None
        if inside:
            first = before[-1] if before else (start, 0, 0.0, inside[0][3])
            cpu, standin = inside[-1][2] - first[2], inside[-1][3] - first[3]
        out.append((name, max(0.0, at - last), peak, cpu, standin))
        last = max(last, at)
    return out


def run_once(standin, cmd, lake, log):
    env = dict(os.environ, **standin.env(), NASLAKE_LOG_FORMAT="json")
    before_req = standin.stats()["requests"]
    before_cpu = proc_cpu(standin.proc.pid)
    samples, done = [], threading.Event()
    start, t0 = time.time(), time.perf_counter()
    with open(log, "wb") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        sampler = threading.Thread(target=sample, args=(p.pid, standin.proc.pid, samples, done), daemon=True)
        sampler.start()
        _, status, usage = os.wait4(p.pid, 0)
        done.set()
    wall = time.perf_counter() - t0
    end = time.time()
    sampler.join()
    code = os.waitstatus_to_exitcode(status)
    requests = standin.stats()["requests"] - before_req
    standin_cpu = proc_cpu(standin.proc.pid) - before_cpu
    return {"wall": wall, "code": code, "rss": usage.ru_maxrss / 1024, "cpu": usage.ru_utime + usage.ru_stime,
            "requests": requests, "standin_cpu": standin_cpu, "phases": phases(log, samples, start, end),
            "rows": {t: table_rows(lake, t) for t in TABLES} if code in (0, 3) else {},
            "rules": findings_by_rule(lake) if code in (0, 3) else {}}


def tail_error(log):
    lines = pathlib.Path(log).read_text(errors="replace").splitlines()
    for line in reversed(lines):
        if "effective_access_limit" in line or '"level":"ERROR"' in line or "error" in line.lower():
            try:
                return json.loads(line).get("fields", {}).get("message", line)[:300]
            except ValueError:
                return line[:300]
    return (lines[-1] if lines else "")[:300]


def main():
    args = sys.argv[1:]
    users = int(args[0]) if len(args) > 0 else 100_000
    groups = int(args[1]) if len(args) > 1 else 20_000
    paths = int(args[2]) if len(args) > 2 else 100_000
    sensitive_percent = float(args[3]) if len(args) > 3 else 2
    modes = (args[4] if len(args) > 4 else "sensitive,all").split(",")
    work = pathlib.Path(tempfile.mkdtemp(prefix="naslake-bench-acl-access-"))
    standin = None
    try:
        t0 = time.perf_counter()
        rng = random.Random(30)
        estate = Estate(users, groups, rng)
        input_dir = work / "input"
        input_dir.mkdir()
        write_ldif(estate.d, input_dir / "directory.ldif")
        t_ldif = time.perf_counter() - t0
        t0 = time.perf_counter()
        tree, n_sensitive = build_tree(estate, paths, sensitive_percent)
        entries = sum(len(n["perm"]["acls"]) for n in tree.values())
        svm_lists = {"shares": shares(estate), "local_groups": LOCAL_GROUPS, "unix_groups": UNIX_GROUPS}
        standin = Standin(work, tree, junction="/vol1", svm_lists=svm_lists)
        t_tree = time.perf_counter() - t0
        del tree
        ldif_mb = (input_dir / "directory.ldif").stat().st_size / 2**20
        print(f"estate: {users:,} users in {groups:,} groups (levels {', '.join(str(len(l)) for l in estate.levels)}), "
              f"directory.ldif {ldif_mb:.0f} MiB (written in {t_ldif:.1f} s)")
        print(f"tree: {paths:,} paths, {entries:,} entries, {n_sensitive:,} sensitive (under /s); "
              f"stand-in started in {t_tree:.1f} s; {os.cpu_count()} cores, one run per mode\n")
        results = []
        for mode in modes:
            spec = work / f"acl_bench_{mode}.toml"
            spec.write_text(job_text(input_dir, mode))
            lake = work / f"lake-{mode}"
            cmd = [BIN, "run", str(spec), "--output", str(lake)]
            print("$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
            r = run_once(standin, cmd, lake, work / f"log-{mode}.jsonl")
            r["mode"] = mode
            if r["code"] not in (0, 3):
                r["error"] = tail_error(work / f"log-{mode}.jsonl")
            results.append(r)
            if not KEEP:
                shutil.rmtree(lake, ignore_errors=True)
        print()
        print(f"{'mode':<10} {'exit':>4} {'wall s':>7} {'peak RSS':>10} {'naslake CPU s':>13} "
              f"{'stand-in CPU s':>14} {'requests':>9} {'walk req/s':>10}")
        for r in results:
            walk = next((secs for name, secs, *_ in r["phases"] if name == "walk"), r["wall"])
            print(f"{r['mode']:<10} {r['code']:>4} {r['wall']:7.1f} {r['rss']:6.0f} MiB {r['cpu']:13.1f} "
                  f"{r['standin_cpu']:14.1f} {r['requests']:>9,} {r['requests'] / walk:10.0f}")
        print()
        print(f"{'rows':<22}" + "".join(f"{r['mode']:>14}" for r in results))
        for t in TABLES:
            print(f"{t:<22}" + "".join(f"{r['rows'][t]:>14,}" if r["rows"] else f"{'-':>14}" for r in results))
        print()
        for r in results:
            if r["rules"]:
                print(f"{r['mode']}: acl_findings by rule: " + ", ".join(f"{k} {v:,}" for k, v in r["rules"].items()))
        for r in results:
            print(f"\n{r['mode']}: where the time and memory go (/proc every 50 ms; the phases end at the log's events)")
            print(f"  {'phase':<30} {'wall s':>7} {'peak RSS':>10} {'naslake CPU s':>14} {'stand-in CPU s':>15}")
            for name, secs, peak, cpu, standin_cpu in r["phases"]:
                if peak is None:
                    print(f"  {name:<30} {secs:7.1f} {'-':>10} {'-':>14} {'-':>15}")
                else:
                    print(f"  {name:<30} {secs:7.1f} {peak:6.0f} MiB {cpu:14.1f} {standin_cpu:15.1f}")
        for r in results:
            if "error" in r:
                print(f"\n{r['mode']}: exit {r['code']} after {r['wall']:.1f} s: {r['error']}")
        for r in results:
            if r["mode"] == "sensitive":
                ok = r["code"] in (0, 3) and r["rss"] <= GIB
                print(f"\nsensitive: peak RSS {r['rss']:.0f} MiB {'within' if ok else 'NOT within'} 1 GiB, exit {r['code']}")
    finally:
        if standin is not None:
            standin.stop()
        if KEEP:
            print(f"\nkept: {work} (NASLAKE_BENCH_KEEP)")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
