"""A directory for the ACL job's effective-access tests, written independently of
naslake: a small model of Active Directory users and groups, its export as LDIF
(RFC 2849, as `ldifde` or `ldapsearch` write it), binary SIDs, and an oracle of
"who can actually reach what" (the README's "Who can reach what"): each user's
token (`acl_memberships`), the Windows access check of each path's DACL with the
shares' permissions over it (`acl_effective_access`), and the findings those feed.

Only the standard library (base64, struct) is used: nothing here is shared with
naslake's own code.

Trees, shares and local groups are in the ONTAP stand-in's format
(tests/ontap_standin.py, tests/test_acl.py's TREE): a tree maps a path inside the
volume to {"type", "perm": {"owner", "control_flags", "acls": [{"user", "access",
"rights" | "advanced_rights", "apply_to", "inherited"}], "effective_style", …}};
a share is {"name", "path", "acls": [{"user_or_group", "sid", "permission",
"type"}]}; a local group {"name", "sid", "members": [{"name"}]}.
"""
import base64
import collections
import dataclasses
import datetime
import re
import struct

# ---- SIDs -------------------------------------------------------------------------

SID_TEXT = re.compile(r"^S-\d+-\d+(-\d+)*$", re.IGNORECASE)


def binary_sid(text):
    """The binary form of a SID (as objectSid holds it): revision byte, sub-authority
    count, the 6-byte big-endian identifier authority, little-endian u32
    sub-authorities."""
    parts = text.split("-")
    if parts[0].upper() != "S" or len(parts) < 3:
        raise ValueError(f"not a SID: {text!r}")
    revision, authority = int(parts[1]), int(parts[2])
    subs = [int(p) for p in parts[3:]]
    if len(subs) > 15:
        raise ValueError(f"a SID has at most 15 sub-authorities: {text!r}")
    return (struct.pack("<BB", revision, len(subs))
            + struct.pack(">HI", authority >> 32, authority & 0xFFFFFFFF)
            + struct.pack(f"<{len(subs)}I", *subs))


def text_sid(data):
    """The S-1-… text of a binary SID; ValueError when the bytes are not one."""
    data = bytes(data)
    if len(data) < 8:
        raise ValueError(f"a SID is at least 8 bytes, not {len(data)}")
    revision, count = struct.unpack("<BB", data[:2])
    if len(data) != 8 + 4 * count:
        raise ValueError(f"a SID of {count} sub-authorities is {8 + 4 * count} bytes, not {len(data)}")
    high, low = struct.unpack(">HI", data[2:8])
    subs = struct.unpack(f"<{count}I", data[8:])
    return f"S-{revision}-{(high << 32) | low}" + "".join(f"-{s}" for s in subs)


# ---- The directory ----------------------------------------------------------------

FILETIME_EPOCH = datetime.datetime(1601, 1, 1, tzinfo=datetime.timezone.utc)


def filetime(when):
    """A Windows FILETIME (100 ns since 1601-01-01 UTC) of an aware datetime."""
    delta = when - FILETIME_EPOCH
    return (delta.days * 86400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def from_filetime(value):
    """The UTC datetime of a FILETIME (None for None or 0: never)."""
    if not value:
        return None
    return FILETIME_EPOCH + datetime.timedelta(microseconds=value // 10)


@dataclasses.dataclass
class User:
    sam: str
    dn: str
    cn: str
    sid: object = None            # "S-1-…", raw objectSid bytes (to write a broken one), or None
    disabled: bool = False
    last_logon: int = None        # FILETIME, or None (never / not given)
    primary_group: int = 513      # RID of the primary group in the user's domain, or None
    member_of: list = dataclasses.field(default_factory=list)  # DNs (the memberOf attribute)


@dataclasses.dataclass
class Group:
    sam: str
    dn: str
    cn: str
    sid: object = None
    members: list = dataclasses.field(default_factory=list)    # DNs (the member attribute)
    member_of: list = dataclasses.field(default_factory=list)  # DNs (memberOf)


class Directory:
    """Users and groups under `base` (DC=corp,DC=example,DC=com), SIDs under
    `domain_sid`. Members and memberOf are given as the sAMAccountNames of this
    directory's entries or as DNs (anything with an `=`: a DN the directory need not
    describe, an unresolved member)."""

    def __init__(self, base="DC=corp,DC=example,DC=com", domain_sid="S-1-5-21-1004336348-1177238915-682003330"):
        self.base = base
        self.domain_sid = domain_sid
        self.users = []
        self.groups = []

    @property
    def default_domain(self):
        """The NetBIOS domain naslake defaults to: the first DC= component, upper-cased."""
        for rdn in self.base.split(","):
            k, _, v = rdn.partition("=")
            if k.strip().upper() == "DC":
                return v.strip().upper()
        raise ValueError("no DC= component")

    def user(self, sam, rid=None, sid=None, cn=None, ou="People", member_of=(), **kw):
        cn = cn or sam
        sid = sid if sid is not None or rid is None else f"{self.domain_sid}-{rid}"
        u = User(sam=sam, dn=f"CN={cn},OU={ou},{self.base}", cn=cn, sid=sid, **kw)
        u._member_of = list(member_of)
        self.users.append(u)
        return u

    def group(self, sam, rid=None, sid=None, cn=None, ou="Groups", members=(), member_of=()):
        cn = cn or sam
        sid = sid if sid is not None or rid is None else f"{self.domain_sid}-{rid}"
        g = Group(sam=sam, dn=f"CN={cn},OU={ou},{self.base}", cn=cn, sid=sid)
        g._members = list(members)
        g._member_of = list(member_of)
        self.groups.append(g)
        return g

    def entries(self):
        """Users then groups, with member and memberOf resolved to DNs."""
        for e in self.users + self.groups:
            if hasattr(e, "_members"):
                e.members = [self.dn(m) for m in e._members]
            e.member_of = [self.dn(m) for m in e._member_of]
        return self.users + self.groups

    def dn(self, ref):
        if "=" in ref:
            return ref
        for e in self.users + self.groups:
            if e.sam.lower() == ref.lower():
                return e.dn
        raise KeyError(f"no entry named {ref!r} in the directory")

    def sid_text(self, entry):
        """The entry's SID as text, or None when it has none or it does not decode."""
        if entry.sid is None:
            return None
        if isinstance(entry.sid, (bytes, bytearray)):
            try:
                return text_sid(entry.sid)
            except ValueError:
                return None
        return entry.sid


# ---- LDIF -------------------------------------------------------------------------

def _safe(value):
    """RFC 2849 SAFE-STRING (ASCII, no NUL/LF/CR, not starting with space, colon or
    '<'), and not ending with a space (which the RFC says to base64 as well)."""
    if value == "":
        return True
    if any(ord(c) > 127 or c in "\0\n\r" for c in value):
        return False
    return value[0] not in " :<" and not value.endswith(" ")


def _attr_line(attr, value):
    if isinstance(value, (bytes, bytearray)):
        return f"{attr}:: {base64.b64encode(bytes(value)).decode('ascii')}"
    value = str(value)
    if _safe(value):
        return f"{attr}: {value}"
    return f"{attr}:: {base64.b64encode(value.encode('utf-8')).decode('ascii')}"


def fold(line, width=76):
    """A logical line as physical lines of at most `width` bytes: continuation lines
    start with one space (RFC 2849). Lines here are ASCII (anything else is base64)."""
    data = line.encode("utf-8")
    if len(data) <= width:
        return [line]
    assert line.isascii(), line
    out = [line[:width]]
    rest = line[width:]
    while rest:
        out.append(" " + rest[:width - 1])
        rest = rest[width - 1:]
    return out


def _comment_name(dn):
    """ldapsearch's record comment: '# alice, People, corp.example.com'."""
    rdns = [r.split("=", 1)[1] for r in dn.split(",")]
    dcs = [r.split("=", 1)[1] for r in dn.split(",") if r.upper().startswith("DC=")]
    names = rdns[:len(rdns) - len(dcs)]
    return ", ".join(names + [".".join(dcs)])


def record_lines(directory, entry, style="ldifde"):
    """The logical lines (unfolded) of one entry."""
    lines = [_attr_line("dn", entry.dn)]
    if style == "ldifde":
        lines.append("changetype: add")
    is_user = isinstance(entry, User)
    classes = ["top", "person", "organizationalPerson", "user"] if is_user else ["top", "group"]
    lines += [_attr_line("objectClass", c) for c in classes]
    lines.append(_attr_line("cn", entry.cn))
    lines.append(_attr_line("distinguishedName", entry.dn))
    lines.append(_attr_line("sAMAccountName", entry.sam))
    if entry.sid is not None:
        raw = entry.sid if isinstance(entry.sid, (bytes, bytearray)) else binary_sid(entry.sid)
        lines.append(_attr_line("objectSid", bytes(raw)))
    if is_user:
        lines.append(_attr_line("userAccountControl", 514 if entry.disabled else 512))
        if entry.last_logon is not None:
            lines.append(_attr_line("lastLogonTimestamp", entry.last_logon))
        if entry.primary_group is not None:
            lines.append(_attr_line("primaryGroupID", entry.primary_group))
    else:
        lines.append(_attr_line("groupType", -2147483646))  # a global security group
        lines += [_attr_line("member", m) for m in entry.members]
    lines += [_attr_line("memberOf", m) for m in entry.member_of]
    return lines


def ldif_text(directory, style="ldifde", crlf=False):
    """The directory as LDIF text.

    style "ldifde": a `version: 1` line, then each entry as `ldifde -f` writes it
    (`changetype: add`); "ldapsearch": `ldapsearch`'s `#` comments (a header, one
    before each entry, a count at the end), no version line and no changetype.
    Either way records are separated by a blank line, lines longer than 76 bytes
    are folded, binary and non-ASCII values are base64 (`attr:: …`)."""
    if style not in ("ldifde", "ldapsearch"):
        raise ValueError(style)
    entries = directory.entries()
    out = []
    if style == "ldifde":
        out += ["version: 1", ""]
    else:
        out += ["# extended LDIF", "#", "# LDAPv3", f"# base <{directory.base}> with scope subtree",
                "# filter: (|(objectClass=user)(objectClass=group))", "# requesting: ALL", "#", ""]
    for e in entries:
        if style == "ldapsearch":
            out.append(f"# {_comment_name(e.dn)}")
        for line in record_lines(directory, e, style):
            out += fold(line)
        out.append("")
    if style == "ldapsearch":
        out += ["# numResponses: %d" % (len(entries) + 1), "# numEntries: %d" % len(entries)]
    eol = "\r\n" if crlf else "\n"
    return eol.join(out) + eol


def write_ldif(directory, path, style="ldifde", crlf=False):
    """Writes `ldif_text` to `path` (UTF-8); returns the text."""
    text = ldif_text(directory, style, crlf)
    with open(path, "wb") as f:
        f.write(text.encode("utf-8"))
    return text


def read_ldif(text):
    """A plain RFC 2849 reader, to check what write_ldif writes: a list of records,
    each a list of (attribute, str or bytes value) in order."""
    records, current, logical = [], [], []
    for raw in text.replace("\r\n", "\n").split("\n") + [""]:
        if raw.startswith(" ") and logical:
            logical[-1] += raw[1:]
            continue
        if raw.startswith("#"):
            continue
        if raw == "":
            if logical:
                current = []
                for line in logical:
                    attr, _, rest = line.partition(":")
                    if rest.startswith(":"):
                        value = base64.b64decode(rest[1:].strip())
                        try:
                            value = value.decode("utf-8") if attr.lower() != "objectsid" else value
                        except UnicodeDecodeError:
                            pass
                    else:
                        value = rest.lstrip(" ")
                    current.append((attr, value))
                if not (len(current) == 1 and current[0][0] == "version"):
                    records.append(current)
            logical = []
            continue
        logical.append(raw)
    return records


# ---- Rights -----------------------------------------------------------------------

FILE_ALL = 0x1F01FF
READ_CONTROL, WRITE_DAC = 0x20000, 0x40000
BASIC = {"full_control": 0x1F01FF, "modify": 0x1301BF, "read_and_execute": 0x1200A9, "read": 0x120089,
         "write": 0x100116}
ADVANCED = {"read_data": 0x1, "write_data": 0x2, "append_data": 0x4, "read_ea": 0x8, "write_ea": 0x10,
            "execute_file": 0x20, "delete_child": 0x40, "read_attr": 0x80, "write_attr": 0x100,
            "delete": 0x10000, "read_perm": 0x20000, "write_perm": 0x40000, "write_owner": 0x80000,
            "synchronize": 0x100000}
SHARE = {"full_control": 0x1F01FF, "change": 0x1301BF, "read": 0x1200A9, "no_access": 0}
GENERIC = {0x80000000: 0x120089, 0x40000000: 0x120116, 0x20000000: 0x1200A0, 0x10000000: 0x1F01FF}


def map_generic(mask):
    """Generic rights mapped as files map them; only the file rights count."""
    out = mask
    for bit, mapped in GENERIC.items():
        if mask & bit:
            out |= mapped
    return out & FILE_ALL


def rights_name(mask):
    """The basic right a mask is exactly, else special (none for 0)."""
    if mask == 0:
        return "none"
    for name, m in BASIC.items():
        if mask == m:
            return name
    return "special"


def ace_mask(a):
    """An ONTAP ACL entry's rights as a mask: the basic right, the advanced rights,
    or (not ONTAP's, for checking the mapping) a numeric access_mask."""
    mask = 0
    if a.get("rights"):
        mask |= BASIC[a["rights"]]
    adv = a.get("advanced_rights") or {}
    if isinstance(adv, dict):
        adv = [k for k, v in adv.items() if v]
    for k in adv:
        mask |= ADVANCED[k]
    if "access_mask" in a:
        mask |= map_generic(int(a["access_mask"]))
    return mask & FILE_ALL


def applies_here(a):
    """The entry applies to the object itself (apply_to holds this_folder)."""
    to = a.get("apply_to", {"this_folder": True})
    if isinstance(to, dict):
        return bool(to.get("this_folder"))
    return "this_folder" in to


# ---- Principals and tokens --------------------------------------------------------

EVERYONE = ("Everyone", "S-1-1-0")
AUTHENTICATED = ("NT AUTHORITY\\Authenticated Users", "S-1-5-11")
OWNER_RIGHTS_SID = "S-1-3-4"
WELL_KNOWN = {
    "everyone": "S-1-1-0",
    "nt authority\\authenticated users": "S-1-5-11",
    "authenticated users": "S-1-5-11",
    "owner rights": "S-1-3-4",
    "creator owner": "S-1-3-0",
    "creator group": "S-1-3-1",
    "nt authority\\system": "S-1-5-18",
    "system": "S-1-5-18",
    "builtin\\administrators": "S-1-5-32-544",
    "builtin\\users": "S-1-5-32-545",
    "builtin\\guests": "S-1-5-32-546",
}


def is_domain_sid(sid):
    return sid is not None and sid.upper().startswith("S-1-5-21-")


class Principals:
    """The principals the oracle knows: the directory's users and groups (by DN),
    the SVM's local groups, Everyone and Authenticated Users; how a name or SID the
    filer gives resolves to one of them; who is a member of whom."""

    def __init__(self, directory, local_groups=(), identity_domain=None):
        self.directory = directory
        self.domain = identity_domain or directory.default_domain
        self.info = {}      # id → {"name", "sid", "kind", "disabled"}
        self.by_sid = {}
        self.by_name = {}
        self.parents = collections.defaultdict(list)  # member id → [group ids], in a stable order
        entries = directory.entries()
        by_dn = {}
        for e in entries:
            pid = ("dn", e.dn.lower())
            by_dn[e.dn.lower()] = pid
            sid = directory.sid_text(e)
            kind = "user" if isinstance(e, User) else "group"
            self.info[pid] = {"name": f"{self.domain}\\{e.sam}", "sid": sid, "kind": kind,
                              "disabled": e.disabled if kind == "user" else None, "entry": e}
            if sid:
                self.by_sid[sid.upper()] = pid
            self.by_name[f"{self.domain}\\{e.sam}".lower()] = pid
        for name, sid in (EVERYONE, AUTHENTICATED):
            pid = ("sid", sid)
            self.info[pid] = {"name": name, "sid": sid, "kind": "well_known", "disabled": None}
            self.by_sid[sid] = pid
        for lg in local_groups:
            pid = ("local", lg["name"].lower())
            self.info[pid] = {"name": lg["name"], "sid": lg.get("sid"), "kind": "local_group", "disabled": None}
            if lg.get("sid"):
                self.by_sid[lg["sid"].upper()] = pid
            self.by_name[lg["name"].lower()] = pid
        # Who is in whom: member (group → members), memberOf (member → groups),
        # the local groups' members by name (or SID).
        def link(child, parent):
            if child is not None and parent is not None and parent not in self.parents[child]:
                self.parents[child].append(parent)
        for e in entries:
            pid = ("dn", e.dn.lower())
            for m in getattr(e, "members", []):
                link(by_dn.get(m.lower()), pid)
            for g in e.member_of:
                link(pid, by_dn.get(g.lower()))
        for lg in local_groups:
            for m in lg.get("members", []):
                link(self.resolve(m["name"], m.get("sid"), known_only=True), ("local", lg["name"].lower()))
        self.primary = {}
        for u in directory.users:
            sid = directory.sid_text(u)
            if sid and u.primary_group is not None:
                domain = sid.rsplit("-", 1)[0]
                self.primary[("dn", u.dn.lower())] = self.by_sid.get(f"{domain}-{u.primary_group}".upper())
        self.unresolved = []
        described = set(by_dn)
        for e in entries:
            for dn in list(getattr(e, "members", [])) + list(e.member_of):
                if dn.lower() not in described and dn not in self.unresolved:
                    self.unresolved.append(dn)

    def resolve(self, name, sid=None, known_only=False):
        """The principal a filer's name (or SID) is: by SID where given or the name
        is a SID or a well-known name, else by DOMAIN\\sAMAccountName (or the local
        group's name) without case. An unknown one is ("sid", SID) or ("name", name
        in lower case) (None with known_only)."""
        if sid is None and name and SID_TEXT.match(name.strip()):
            sid = name.strip()
        if sid is None and name and name.strip().lower() in WELL_KNOWN:
            sid = WELL_KNOWN[name.strip().lower()]
        if sid is not None:
            pid = self.by_sid.get(sid.upper())
            if pid is None and name and not SID_TEXT.match(name.strip()):
                pid = self.by_name.get(name.strip().lower())
            return pid if pid is not None or known_only else ("sid", sid.upper())
        pid = self.by_name.get((name or "").strip().lower())
        return pid if pid is not None or known_only else ("name", (name or "").strip().lower())

    def name(self, pid):
        return self.info[pid]["name"] if pid in self.info else pid[1]

    def in_cycle(self, pid):
        """A group that is, through its members, a member of itself."""
        seen, todo = set(), list(self.parents.get(pid, []))
        while todo:
            g = todo.pop()
            if g == pid:
                return True
            if g in seen:
                continue
            seen.add(g)
            todo += self.parents.get(g, [])
        return False

    def token(self, pid, ties=None):
        """{group id: (depth, chain of names)} of a user, breadth first, each group
        at its shortest depth; Everyone and Authenticated Users at depth 1. A group
        reached at its depth by two different chains is noted in `ties`."""
        out = {}
        first = list(self.parents.get(pid, []))
        if pid in self.primary and self.primary[pid] is not None and self.primary[pid] not in first:
            first.append(self.primary[pid])
        first += [("sid", EVERYONE[1]), ("sid", AUTHENTICATED[1])]
        level = []
        for g in first:
            if g not in out and g != pid:
                out[g] = (1, (self.name(g),))
                level.append(g)
        depth = 1
        while level:
            nxt = []
            for g in level:
                for p in self.parents.get(g, []):
                    if p == pid:
                        continue
                    chain = out[g][1] + (self.name(p),)
                    if p not in out:
                        out[p] = (depth + 1, chain)
                        nxt.append(p)
                    elif out[p][0] == depth + 1 and out[p][1] != chain and ties is not None:
                        ties.append((self.name(pid), self.name(p), out[p][1], chain))
            level = nxt
            depth += 1
        return out


# ---- The oracle -------------------------------------------------------------------

AccessRow = collections.namedtuple(
    "AccessRow", "path share user user_sid access_mask via account_disabled rights sensitive")
Membership = collections.namedtuple("Membership", "user user_sid group group_sid depth chain")


@dataclasses.dataclass
class Expected:
    access: set            # AccessRow
    memberships: set       # Membership
    users: list            # (name, sid, disabled) of every user the check ran for
    shares: list           # (share name, its path in the volume, its ACL) of the volume's shares
    ambiguous: list        # places the rules leave open (see the module's notes); the scenario should have none


def under(path, prefix):
    prefix = prefix.rstrip("/") or "/"
    return prefix == "/" or path == prefix or path.startswith(prefix + "/")


def volume_path(share_path, junction):
    """A share's folder as a path inside the volume, or None when it is outside it."""
    j = junction.rstrip("/")
    if not j:
        return share_path if share_path.startswith("/") else None
    if share_path.rstrip("/") == j:
        return "/"
    if share_path.startswith(j + "/"):
        return share_path[len(j):].rstrip("/") or "/"
    return None


def collected(tree):
    """The NTFS paths the run collects (with permissions, and no error)."""
    for path, node in sorted(tree.items()):
        perm = node.get("perm")
        if perm is None or "status" in node or node.get("flaky") or node.get("echo_auth"):
            continue
        yield path, perm


def check_ntfs(perm, token, principals, owner_in_token):
    """(granted mask, {entry index: the bits it granted}) of one DACL for a token."""
    flags = int(str(perm.get("control_flags", "0x0")), 16)
    if not flags & 0x0004:  # a null DACL: every right to everyone, through no entry
        return FILE_ALL, {}
    acls = perm.get("acls") or []
    decided = granted = 0
    by_entry = {}
    owner_rights = any(principals.resolve(a.get("user"), a.get("sid")) == ("sid", OWNER_RIGHTS_SID) for a in acls)
    if owner_in_token and not owner_rights:
        decided |= READ_CONTROL | WRITE_DAC
        granted |= READ_CONTROL | WRITE_DAC
    for i, a in enumerate(acls):
        if a.get("access") not in ("access_allow", "access_deny") or not applies_here(a):
            continue
        pid = principals.resolve(a.get("user"), a.get("sid"))
        hit = owner_in_token if pid == ("sid", OWNER_RIGHTS_SID) else pid in token
        if not hit:
            continue
        new = ace_mask(a) & ~decided
        decided |= new
        if a["access"] == "access_allow":
            granted |= new
            by_entry[i] = new
    return granted & FILE_ALL, by_entry


def check_share(acls, token, principals):
    """The mask a share's ACL grants a token: denials (no_access) first, as in a
    canonical DACL, then in order; each right decided by the first entry whose
    principal is in the token (Windows names only)."""
    decided = granted = 0
    ordered = sorted(acls or [], key=lambda e: e["permission"] != "no_access")
    for e in ordered:
        if e.get("type", "windows") != "windows":
            continue
        if principals.resolve(e.get("user_or_group"), e.get("sid")) not in token:
            continue
        perm = e["permission"]
        mask = FILE_ALL if perm == "no_access" else SHARE[perm]
        new = mask & ~decided
        decided |= new
        if perm != "no_access":
            granted |= new
    return granted


def popcount(x):
    return bin(x).count("1")


def oracle(tree, directory, shares=(), local_groups=(), junction="/vol1", identity_domain=None,
           sensitive=("/",), mode="sensitive", svm=None):
    """The expected acl_effective_access and acl_memberships rows of one run (see
    `Expected`), implementing the README's "Who can reach what"."""
    if mode not in ("sensitive", "all"):
        raise ValueError(mode)
    P = Principals(directory, local_groups, identity_domain)
    ambiguous = []
    paths = list(collected(tree))
    ntfs_paths = [(p, perm) for p, perm in paths if perm.get("effective_style") == "ntfs"]

    # The users: the directory's, then whoever an entry names that nothing describes.
    users = [(("dn", u.dn.lower()), P.info[("dn", u.dn.lower())]["name"], directory.sid_text(u), u.disabled)
             for u in directory.users]
    seen = set()
    for _, perm in ntfs_paths:
        for a in perm.get("acls") or []:
            pid = P.resolve(a.get("user"), a.get("sid"))
            if pid in P.info or pid in seen:
                continue
            sid = pid[1] if pid[0] == "sid" else None
            if sid is not None and not is_domain_sid(sid):
                continue  # CREATOR OWNER, SYSTEM, OWNER RIGHTS, …: nobody's account
            seen.add(pid)
            users.append((pid, a["user"], sid, None))

    tokens = {}
    for pid, name, sid, _ in users:
        ties = []
        tokens[pid] = P.token(pid, ties) if pid in P.info else {
            ("sid", EVERYONE[1]): (1, (EVERYONE[0],)), ("sid", AUTHENTICATED[1]): (1, (AUTHENTICATED[0],))}
        ambiguous += [("membership tie",) + t for t in ties]

    memberships = set()
    for pid, name, sid, _ in users:
        if pid not in P.info:
            continue  # acl_memberships is the directory's users
        for g, (depth, chain) in tokens[pid].items():
            memberships.add(Membership(name, sid, P.name(g), P.info[g]["sid"], depth, chain))

    volume_shares = []
    for s in shares:
        if s.get("svm_uuid") not in (None, svm):
            continue
        vp = volume_path(s["path"], junction)
        if vp is not None:
            volume_shares.append((s["name"], vp, s.get("acls") or []))

    access = set()
    for path, perm in ntfs_paths:
        is_sensitive = any(under(path, s) for s in sensitive)
        if mode == "sensitive" and not is_sensitive:
            continue
        owner = P.resolve(perm.get("owner"), perm.get("owner_sid"))
        covering = [s for s in volume_shares if under(path, s[1])]
        for pid, name, sid, disabled in users:
            token = tokens[pid]
            ids = set(token) | {pid}
            mask, by_entry = check_ntfs(perm, ids, P, owner in ids)
            if not mask:
                continue
            acls = perm.get("acls") or []

            def via(row_mask):
                best, best_n = None, 0
                for i, bits in sorted(by_entry.items()):
                    n = popcount(bits & row_mask)
                    if n > best_n:
                        best, best_n = i, n
                if best is None:
                    return ()
                e = P.resolve(acls[best].get("user"), acls[best].get("sid"))
                if e == pid:
                    return ()
                if e == ("sid", OWNER_RIGHTS_SID):
                    ambiguous.append(("via an OWNER RIGHTS entry", path, name))
                    return ()
                return token[e][1]

            ntfs_via = via(mask)
            access.add(AccessRow(path, None, name, sid, mask, ntfs_via, disabled, rights_name(mask), is_sensitive))
            for share, _, sacl in covering:
                m = mask & check_share(sacl, ids, P)
                if m:
                    v = via(m)
                    if v != ntfs_via:
                        ambiguous.append(("share row via differs from the NTFS row's", path, share, name, ntfs_via, v))
                    access.add(AccessRow(path, share, name, sid, m, v, disabled, rights_name(m), is_sensitive))
    return Expected(access, memberships, [(n, s, d) for _, n, s, d in users], volume_shares, ambiguous)


def expected_principals(directory, local_groups=(), unix_groups=(), identity_domain=None):
    """acl_principals as (name, sid, kind, origin, disabled, in_cycle): the directory's
    users and groups, member DNs it does not describe (unresolved), the SVM's local
    groups and UNIX groups."""
    P = Principals(directory, local_groups, identity_domain)
    rows = set()
    for e in directory.entries():
        pid = ("dn", e.dn.lower())
        i = P.info[pid]
        rows.add((i["name"], i["sid"], i["kind"], "directory", i["disabled"],
                  i["kind"] == "group" and P.in_cycle(pid)))
    for dn in P.unresolved:
        rows.add((dn, None, "unresolved", "member", None, False))
    for lg in local_groups:
        rows.add((lg["name"], lg.get("sid"), "group", "local_group", None, P.in_cycle(("local", lg["name"].lower()))))
    for ug in unix_groups:
        rows.add((ug["name"], None, "group", "unix_group", None, False))
    return rows


def expected_findings(expected, tree, sensitive=("/",)):
    """The new acl_findings rules as a Counter of (rule_id, severity, path, principal):
    disabled_account_access (high; a disabled account with any right on a sensitive
    path, per path and user), share_wider_than_ntfs (low; per share and share entry
    that grants a right no NTFS allow entry at or below the share's folder grants;
    path = the share's folder in the volume, principal = the share entry's),
    deep_nesting (low; per path and user whose NTFS access comes through 3 or more
    nested groups)."""
    out = collections.Counter()
    for r in expected.access:
        if r.share is not None:
            continue
        if r.account_disabled and any(under(r.path, s) for s in sensitive):
            out[("disabled_account_access", "high", r.path, r.user)] += 1
        if len(r.via) >= 3:
            out[("deep_nesting", "low", r.path, r.user)] += 1
    for share, folder, acls in expected.shares:
        ntfs = 0
        for path, perm in collected(tree):
            if perm.get("effective_style") != "ntfs" or not under(path, folder):
                continue
            for a in perm.get("acls") or []:
                if a.get("access") == "access_allow":
                    ntfs |= ace_mask(a)
        for e in acls:
            if e["permission"] != "no_access" and SHARE[e["permission"]] & ~ntfs:
                out[("share_wider_than_ntfs", "low", folder, e["user_or_group"])] += 1
    return out
