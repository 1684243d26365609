"""The table reference (docs/tables.md) is rendered from schemas/ (tests/docs_tables.rs
checks the rendering); here its Athena DDL must be what the catalog holds for a real
run of every job (the README's first command), its NOT NULL lists what the schema
files say, and its example Athena queries must run (through `naslake query`, on the
samples' lake and its run history)."""
import json
import re
import tomllib

import pytest

from conftest import ROOT, naslake


@pytest.fixture(scope="module")
def sample_lake(tmp_path_factory):
    """`naslake run --all` on the bundled samples, as the README's first command runs
    it (no pseudonym key: the DICOM samples run with the published sample key)."""
    lake = tmp_path_factory.mktemp("all") / "lake"
    run = naslake("run", "--all", "--output", lake, lake=lake,
                  env={"NASLAKE_PSEUDONYM_KEY": "", "NASLAKE_PSEUDONYM_SECRET_ID": ""})
    assert run.code == 3, run.stdout + run.stderr
    return run


def table_sections(shipped=True):
    """The table reference's sections (docs/tables.md, rendered from schemas/): those
    of the shipped jobs' tables, or (shipped=False) those of the tables a job may add."""
    text = (ROOT / "docs" / "tables.md").read_text()
    jobs, _, others = text.partition("\n## Tables a job may add\n")
    part = jobs if shipped else others
    out = {}
    for chunk in re.split(r"\n### `", part)[1:]:
        name = chunk.split("`", 1)[0]
        blocks = re.findall(r"```sql\n(.*?)```", chunk, re.S)
        never_null = re.search(r"Never NULL: (.*)\.\n", chunk)
        out[name] = (blocks, never_null.group(1) if never_null else None)
    return out


def test_readme_documents_every_table_the_jobs_write(sample_lake):
    listed = naslake("catalog", "list", "--catalog", f"local:{sample_lake.lake}").stdout
    tables = {line.split("\t")[0].split(".", 1)[1] for line in listed.splitlines()}
    assert set(table_sections()) == tables


def test_readme_ddl_is_what_the_catalog_holds(sample_lake):
    for table, (blocks, _) in table_sections().items():
        ddl = naslake("catalog", "show", table, "--ddl", "--catalog", f"local:{sample_lake.lake}").stdout
        # The README shows a placeholder bucket and run id for the location.
        ddl = re.sub(r"LOCATION 'file://[^']*/" + table + r"/(v-[0-9a-z]+/)?'",
                     lambda m: f"LOCATION 's3://LAKE/{table}/" + ("v-RUNID/" if m.group(1) else "") + "'", ddl)
        assert blocks[0] == ddl, f"README DDL of {table} is stale; it should be:\n{ddl}"


def test_readme_not_null_lists_match_the_schema_files():
    for table, (_, never_null) in {**table_sections(), **table_sections(shipped=False)}.items():
        schema = tomllib.loads((ROOT / "schemas" / f"{table}.toml").read_text())
        want = ", ".join(f"`{c['name']}`" for c in schema["columns"] if c.get("nullable", True) is False)
        assert never_null == want, table


def test_readme_example_queries_run(sample_lake):
    # The run history's example reads the sample lake's reports (naslake_runs of
    # `naslake query`), as Athena would read the table a job declares.
    for table, (blocks, _) in {**table_sections(), **table_sections(shipped=False)}.items():
        if table.endswith("_key_links"):
            # No shipped job declares it (it names patients); test_dicom_keys.py
            # runs its example on a lake that has it.
            continue
        query = blocks[1]
        # `--` because the query starts with an SQL comment, which looks like an option.
        out = naslake("query", "--catalog", f"local:{sample_lake.lake}", "--format", "json", "--", query).stdout
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        assert rows, f"the example query of {table} returns nothing on the samples"

