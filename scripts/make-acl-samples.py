"""Makes samples/acl/ontap-recording.json: the answers an ONTAP filer gives for a
small invented share, recorded from the stand-in (tests/ontap_standin.py) while
naslake walks it, so that jobs/acl.toml replays them with no filer. The share is
the test suite's known tree (tests/test_acl.py TREE) without the paths that only
exercise retries, so every rule of jobs/acl_findings.sql fires on the samples and
the rejects table has a vanished, a denied and an unlistable path.

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
from test_acl import TREE, Standin  # noqa: E402

OUT = ROOT / "samples" / "acl" / "ontap-recording.json"
# Paths that only exercise retries, or a filer that quotes credentials.
RETRIES_ONLY = {"/flaky.txt", "/busy.txt", "/down.txt", "/echo.txt"}


def main():
    tree = {p: n for p, n in TREE.items() if p not in RETRIES_ONLY}
    job = (ROOT / "jobs" / "acl.toml").read_text().replace('replay = "ontap-recording.json"\n', "")
    with tempfile.TemporaryDirectory() as d:
        d = pathlib.Path(d)
        spec = d / "acl.toml"
        spec.write_text(job.replace('input = "../samples/acl"\n', "").replace('"../', f'"{ROOT}/')
                        .replace('sql = "', f'sql = "{ROOT}/jobs/'))
        recording = d / "recording.json"
        s = Standin(d, tree, record=recording)
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
    print(f"{OUT.relative_to(ROOT)}: {len(answers['answers'])} answers")


if __name__ == "__main__":
    main()
