"""OpenLDAP's slapd (Debian's) as a directory for the ACL job's live LDAP path:
loaded with slapadd from an LDIF, serving ldap:// and ldaps:// on loopback ports,
run in the foreground as a child process and stopped by its PID.

slapd knows no Active Directory attribute: tests/ldap/ad.schema adds objectSid,
sAMAccountName, userAccountControl, primaryGroupID, lastLogonTimestamp, memberOf
and the user and group classes. The reader the job binds as is not the root DN,
so slapd's size limit holds for it: a search of more than `soft_limit` entries
only succeeds page by page (the paged results control)."""
import pathlib
import socket
import subprocess
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
SLAPD, SLAPADD = "/usr/sbin/slapd", "/usr/sbin/slapadd"
READER = "cn=reader,dc=corp,dc=example,dc=com"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ancestors(dns, suffix):
    """The entries every DN needs above it, down from the suffix's: (dn, rdn attr, value)."""
    need = set()
    for dn in dns:
        parts = [p.strip() for p in dn.split(",")]
        for i in range(1, len(parts)):
            parent = ",".join(parts[i:])
            if parent.lower() != suffix.lower() and parent.lower().endswith(suffix.lower()):
                need.add(parent)
    return sorted(need, key=lambda d: d.count(","))


def base_entries(ldif_text, suffix="dc=corp,dc=example,dc=com", password="reader-pw"):
    """The suffix, the containers the entries lie in, and the reader account, as LDIF."""
    dns = [line[4:] for line in unfold(ldif_text) if line.lower().startswith("dn: ")]
    out = [f"dn: {suffix}\nobjectClass: top\nobjectClass: dcObject\nobjectClass: organization\n"
           f"dc: {suffix.split(',')[0].split('=')[1]}\no: test\n"]
    for dn in ancestors(dns, suffix):  # parents before children
        attr, value = dn.split(",")[0].split("=", 1)
        if attr.strip().lower() == "ou":
            out.append(f"dn: {dn}\nobjectClass: top\nobjectClass: organizationalUnit\nou: {value}\n")
        else:  # CN=Users and the like: a container; core has none, organizationalRole holds a cn
            out.append(f"dn: {dn}\nobjectClass: top\nobjectClass: organizationalRole\ncn: {value}\n")
    out.append(f"dn: {READER}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
               f"cn: reader\nuserPassword: {password}\n")
    return "\n".join(out) + "\n"


def unfold(text):
    lines = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        if raw.startswith(" ") and lines:
            lines[-1] += raw[1:]
        else:
            lines.append(raw)
    return lines


class Slapd:
    def __init__(self, tmp, ldif_text, cert, key, soft_limit=5, password="reader-pw"):
        self.dir = pathlib.Path(tmp)
        (self.dir / "db").mkdir(parents=True)
        self.password = password
        conf = self.dir / "slapd.conf"
        conf.write_text(f"""
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include {ROOT}/tests/ldap/ad.schema
pidfile {self.dir}/slapd.pid
argsfile {self.dir}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
database mdb
maxsize 104857600
suffix "dc=corp,dc=example,dc=com"
rootdn "cn=admin,dc=corp,dc=example,dc=com"
rootpw admin-pw-not-used
directory {self.dir}/db
limits dn.exact="{READER}" size.soft={soft_limit} size.hard={soft_limit} size.pr=unlimited size.prtotal=unlimited
access to attrs=userPassword by anonymous auth by * none
access to * by users read by * none
""")
        data = self.dir / "data.ldif"
        data.write_text(base_entries(ldif_text, password=password) + "\n" + for_slapd(ldif_text))
        load = subprocess.run([SLAPADD, "-f", str(conf), "-l", str(data)], capture_output=True, text=True)
        if load.returncode != 0:
            raise RuntimeError(f"slapadd failed:\n{load.stderr}")
        self.port, self.tls_port = free_port(), free_port()
        self.proc = subprocess.Popen([SLAPD, "-d", "0", "-f", str(conf), "-h",
                                      f"ldap://127.0.0.1:{self.port}/ ldaps://127.0.0.1:{self.tls_port}/"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"slapd did not start: {self.proc.stderr.read().decode()}")
                time.sleep(0.05)
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.tls_url = f"ldaps://127.0.0.1:{self.tls_port}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def for_slapd(ldif_text):
    """The export as slapadd takes it: no `changetype` lines (it takes content
    records), no `distinguishedName` (slapd keeps the DN itself), and an `sn` for
    each person, which OpenLDAP's person class requires and AD's does not."""
    out = []
    for record in "\n".join(unfold(ldif_text)).split("\n\n"):
        lines = [line for line in record.split("\n")
                 if line and not line.lower().startswith(("changetype:", "distinguishedname:", "version:", "#"))]
        if not lines:
            continue
        lower = [line.lower() for line in lines]
        if "objectclass: person" in lower and not any(x.startswith(("sn:", "sn::")) for x in lower):
            lines.append("sn: -")
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"
