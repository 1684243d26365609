"""The ACL job reading the directory live over LDAP (`[sources.acl.ldap]`) from
OpenLDAP's slapd (tests/ldap_server.py), holding the same directory as
tests/test_acl_access.py's export: the tables equal those of the LDIF run, over
ldap:// (a page at a time: the server refuses more than 5 entries at once) and
over ldaps:// verified against the test CA; a refused bind and a server the
bundle does not vouch for fail the run, and leave the lake as it was."""
import hashlib
import pathlib

import pytest

from acl_directory import ldif_text
from conftest import run_job
from ldap_server import READER, SLAPD, Slapd
from ontap_standin import make_certs, self_signed
# `stand`: test_acl_access's stand-in fixture (the same tree, shares and groups).
from test_acl_access import D, access_job, access_rows, membership_rows, principal_rows, stand  # noqa: F401

pytestmark = pytest.mark.skipif(not pathlib.Path(SLAPD).exists(), reason="slapd is not installed (scripts/test installs it)")

BASE = "DC=corp,DC=example,DC=com"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("ldap-certs"))


@pytest.fixture(scope="module")
def slapd(tmp_path_factory, certs):
    ca, cert, key = certs
    s = Slapd(tmp_path_factory.mktemp("slapd"), ldif_text(D, style="ldapsearch"), cert, key)
    yield s
    s.stop()


def ldap_table(url, ca=None, page_size=3):
    lines = ["[sources.acl.ldap]", f'url = "{url}"', f'base_dn = "{BASE}"', f'bind_dn = "{READER}"',
             f"page_size = {page_size}"]
    if ca:
        lines.append(f'ca_bundle = "{ca}"')
    return "\n".join(lines)


def run_ldap(tmp, stand, slapd, url, ca=None, password=None, codes=(0, 3), lake=None):
    tmp = pathlib.Path(tmp)
    (tmp / "input").mkdir(parents=True, exist_ok=True)
    spec = access_job(tmp, source='effective_access = "sensitive"', input_dir=tmp / "input",
                      identities=ldap_table(url, ca))
    env = dict(stand.env(), NASLAKE_LDAP_PASSWORD=password or slapd.password)
    lake = lake or tmp / "lake"
    return run_job(spec, lake, env=env, check_codes=codes), lake


@pytest.fixture(scope="module")
def ldif_run(stand, tmp_path_factory):
    from test_acl_access import run_access
    return run_access(tmp_path_factory.mktemp("ldif"), stand)


def tables(lake):
    # slapd gives attribute types in DNs in lower case (cn=alice,ou=…): a DN is
    # the same DN in any case of its types.
    principals = {tuple(sorted(dict(r, dn=r["dn"] and r["dn"].lower()).items())) for r in principal_rows(lake)}
    return access_rows(lake), membership_rows(lake), principals


def test_ldap_gives_the_tables_the_ldif_export_gives(stand, slapd, ldif_run, tmp_path):
    _, ldif_lake = ldif_run
    run, lake = run_ldap(tmp_path, stand, slapd, slapd.url)
    got, want = tables(lake), tables(ldif_lake)
    for g, w, name in zip(got, want, ("acl_effective_access", "acl_memberships", "acl_principals")):
        assert g == w, (name, sorted(g ^ w)[:10])
    assert len(got[0]) > 100 and len(got[1]) > 50
    # More entries than the server gives at once: the search went page by page.
    assert sum(1 for p in principal_rows(lake) if p["origin"] == "directory") > 5


def test_ldaps_is_verified_against_the_bundle(stand, slapd, certs, ldif_run, tmp_path):
    ca, _, _ = certs
    run, lake = run_ldap(tmp_path / "good", stand, slapd, slapd.tls_url, ca=ca)
    assert tables(lake) == tables(ldif_run[1])
    # A bundle that does not vouch for the server: refused, and nothing written.
    other, _ = self_signed(tmp_path / "other")
    run, lake = run_ldap(tmp_path / "bad", stand, slapd, slapd.tls_url, ca=other, codes=(1,))
    out = run.stdout + run.stderr
    assert "LDAP server ldaps://127.0.0.1" in out and ("certificate" in out.lower() or "unknownissuer" in out.lower()), out[-2000:]
    assert not any((lake / "acl_effective_access").glob("**/*.parquet")) if lake.exists() else True


def digest(lake):
    h = hashlib.sha256()
    for p in sorted(pathlib.Path(lake).rglob("*")):
        if p.is_file() and "_naslake/runs" not in str(p) and "_naslake/logs" not in str(p):
            h.update(str(p.relative_to(lake)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_a_refused_bind_fails_the_run_and_leaves_the_lake_as_it_was(stand, slapd, tmp_path):
    run, lake = run_ldap(tmp_path / "first", stand, slapd, slapd.url)
    before = digest(lake)
    asked = len(stand.stats()["paths"])
    run, _ = run_ldap(tmp_path / "second", stand, slapd, slapd.url, password="wrong-password", codes=(1,), lake=lake)
    # The bind is tried before the walk: no path was asked about.
    assert len(stand.stats()["paths"]) == asked
    out = run.stdout + run.stderr
    assert "the bind as `cn=reader,dc=corp,dc=example,dc=com` was refused" in out, out[-2000:]
    assert "result 49" in out and "NASLAKE_LDAP_PASSWORD" in out
    assert "wrong-password" not in out
    assert digest(lake) == before


def test_ldap_over_plain_text_to_another_host_is_refused_before_any_work(stand, slapd, tmp_path):
    tmp_path.joinpath("input").mkdir()
    spec = access_job(tmp_path, input_dir=tmp_path / "input",
                      identities=ldap_table("ldap://dc1.corp.example.com"))
    run = run_job(spec, tmp_path / "lake", env=dict(stand.env(), NASLAKE_LDAP_PASSWORD="x"), check_codes=(2,))
    assert "clear text" in run.stdout + run.stderr
