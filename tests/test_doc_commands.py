"""Every command the README and the pages of docs/ show in a ```sh block runs as the
docs say it does.

A ```sh block holds commands meant to be typed in the repository's root. Each block
is run by bash, its commands one after the other (so `PLAN=$(cargo run -- plan …)`
feeds the next line), with `cargo run [ARGS] -- X` standing for the built binary
with the arguments X. Each page runs in its own copy of what the commands read
(jobs/, samples/, schemas/) with the lake `cargo run -- run --all` makes there
(a page that runs `run --all` itself starts without one, as a new user does). Every
command must exit 0, or the code a `# exit code N` comment on its line says, and
print something (assignments and commands like `cd` excepted).

A block that cannot run here (it needs AWS, a filer, Docker, or is a long benchmark
or the test suite itself) carries `<!-- not run by the tests: REASON -->` on the
line right before its fence. Nothing else is skipped: a new ```sh block is run
unless it is marked, and the other shell fences (bash, shell, console) are refused,
so no command slips by untested.
"""
import os
import pathlib
import re
import shutil
import subprocess

import pytest

from conftest import BIN, ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
NOT_RUN = re.compile(r"^<!--\s*not run by the tests:\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^(\s*)```(.*)$")
SHELL_FENCES = {"bash", "shell", "console", "zsh", "shell-session"}
EXIT_CODE = re.compile(r"\s#.*\bexit code (\d+)")
# Commands that print nothing when they work.
SILENT = re.compile(r"^(\w+=|(cd|mkdir|cp|mv|rm|export|touch|ln)\s)")
# `cargo run [cargo's options] -- ARGS` is the built binary with ARGS; nothing else of
# cargo is run here.
PRELUDE = r"""
set -o pipefail
cargo() {
  if [ "${1-}" != run ]; then
    echo "the docs' tests run only \`cargo run -- …\`, not: cargo $*" >&2
    return 127
  fi
  shift
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do shift; done
  [ $# -gt 0 ] && shift
  "$DOCS_NASLAKE_BIN" "$@"
}
"""


def page_id(page):
    return str(page.relative_to(ROOT))


def blocks(page):
    """(line, fence language, the not-run reason or None, the block's text) of every
    fenced block of a page, and the lines of not-run markers no ```sh block follows."""
    lines = page.read_text().split("\n")
    out, orphans = [], []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            if NOT_RUN.match(lines[i]) and not (i + 1 < len(lines) and lines[i + 1].strip() == "```sh"):
                orphans.append(i + 1)
            i += 1
            continue
        indent, lang = m.group(1), m.group(2).strip()
        marker = NOT_RUN.match(lines[i - 1]) if i > 0 else None
        start = i
        i += 1
        body = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        assert i < len(lines), f"{page_id(page)}:{start + 1}: unclosed code fence"
        out.append((start + 1, lang, marker.group(1) if marker else None, "\n".join(body)))
        i += 1
    return out, orphans


def commands(text):
    """A block's commands: lines joined where they end in a backslash, comments and
    blank lines left out; each with the exit code it is expected to end with."""
    out, current = [], ""
    for line in text.split("\n"):
        current += line + "\n"
        if line.endswith("\\"):
            continue
        cmd, current = current.rstrip("\n"), ""
        if not cmd.strip() or cmd.lstrip().startswith("#"):
            continue
        m = EXIT_CODE.search(cmd.split("\n")[-1])
        out.append((cmd, int(m.group(1)) if m else 0))
    assert not current.strip(), f"a command ends with a backslash: {current!r}"
    return out


def sh_blocks(page):
    found, _ = blocks(page)
    return [(line, reason, text) for line, lang, reason, text in found if lang == "sh"]


def test_the_pages_are_found():
    ids = {page_id(p) for p in PAGES}
    assert {"README.md", "docs/getting-started.md", "docs/SUMMARY.md"} <= ids
    # The README's first command and its tour are run here.
    readme = [text for _, reason, text in sh_blocks(ROOT / "README.md") if reason is None]
    assert any("cargo run -- run --all" in text for text in readme)
    assert sum(len(commands(text)) for text in readme) >= 5


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_sh_block_is_run_or_marked(page):
    """Shell commands are in ```sh blocks, and a not-run marker names its reason and
    stands right before the ```sh block it exempts."""
    found, orphans = blocks(page)
    where = page_id(page)
    assert not orphans, f"{where}: a not-run marker on line(s) {orphans} is not right before a ```sh fence"
    for line, lang, reason, text in found:
        assert lang not in SHELL_FENCES, f"{where}:{line}: use ```sh for commands (```text for output), not ```{lang}"
        if lang == "sh":
            assert reason is None or reason, f"{where}:{line}: the not-run marker gives no reason"
            assert commands(text), f"{where}:{line}: a ```sh block without a command"


def workspace(cwd, with_lake):
    """What the docs' commands read, copied into cwd, with the lake `cargo run -- run
    --all` makes there when with_lake (the catalog names its files by absolute paths,
    so a lake is made in place, never copied)."""
    for name in ("jobs", "samples", "schemas"):
        shutil.copytree(ROOT / name, cwd / name)
    if with_lake:
        proc = subprocess.run([BIN, "run", "--all"], cwd=cwd, env=doc_env(cwd),
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 3, proc.stdout + proc.stderr


def doc_env(cwd):
    """A user's environment: none of naslake's variables set (the tests' own, such as a
    pseudonym key or a log format, would change what the commands do)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NASLAKE_")}
    env["DOCS_NASLAKE_BIN"] = str(BIN)
    tmp = pathlib.Path(cwd) / ".tmp"
    tmp.mkdir(exist_ok=True)
    env["TMPDIR"] = str(tmp)
    return env


def run_block(cwd, text, outdir):
    """Runs one block in one bash process; returns (command, expected code, code,
    stdout, stderr) for each of its commands."""
    cmds = commands(text)
    script = [PRELUDE]
    for i, (cmd, _) in enumerate(cmds):
        script.append(f'{{\n{cmd}\n}} >"{outdir}/{i}.out" 2>"{outdir}/{i}.err"\necho $? >"{outdir}/{i}.rc"\n')
    subprocess.run(["bash", "-c", "\n".join(script)], cwd=cwd, env=doc_env(cwd), timeout=1200, check=False)
    results = []
    for i, (cmd, want) in enumerate(cmds):
        rc_file = outdir / f"{i}.rc"
        code = int(rc_file.read_text()) if rc_file.exists() else None
        results.append((cmd, want, code, (outdir / f"{i}.out").read_text(errors="replace"),
                        (outdir / f"{i}.err").read_text(errors="replace")))
    return results


@pytest.mark.parametrize("page", [p for p in PAGES if any(r is None for _, r, _ in sh_blocks(p))], ids=page_id)
def test_doc_commands_run(page, tmp_path):
    """Every command of the page's unmarked ```sh blocks, in order, in the page's own
    copy of the repository's inputs."""
    runnable = [(line, text) for line, reason, text in sh_blocks(page) if reason is None]
    runs_all = any(re.search(r"^cargo run -- run --all\b", text, re.M) for _, text in runnable)
    cwd = tmp_path / "repo"
    cwd.mkdir()
    workspace(cwd, with_lake=not runs_all)
    failures = []
    ran = 0
    for n, (line, text) in enumerate(runnable):
        outdir = tmp_path / f"block-{n}"
        outdir.mkdir()
        for cmd, want, code, out, err in run_block(cwd, text, outdir):
            ran += 1
            where = f"{page_id(page)}:{line}: {cmd}"
            if code != want:
                failures.append(f"{where}\n  exited {code}, the docs say {want}\n  stdout: {out[-2000:]}\n  stderr: {err[-2000:]}")
            elif not SILENT.match(cmd) and not out.strip():
                failures.append(f"{where}\n  printed nothing\n  stderr: {err[-2000:]}")
    assert ran
    assert not failures, "\n\n".join(failures)
