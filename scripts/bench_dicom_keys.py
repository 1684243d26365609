"""What pseudonymizing object keys costs a DICOM run: the same job over the same
corpus (the pydicom wheels' .dcm files, copied COPIES times into folders), with
`deidentification.keys = "keep"` and with "pseudonymize", in alternating
repetitions; median wall time and peak RSS of each (one naslake process, every
core, both ways)."""
import os
import pathlib
import statistics
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_dicom import BIN, JOB, KEY, ROOT, corpus, measure  # noqa: E402


def main():
    copies = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    with tempfile.TemporaryDirectory(prefix="naslake-bench-dicom-keys-") as tmp:
        tmp = pathlib.Path(tmp)
        n, size = corpus(tmp / "in", copies)
        jobs = {}
        for keys in ("keep", "pseudonymize"):
            text = JOB.format(input=tmp / "in", root=ROOT)
            text = text.replace("[sources.dicom.deidentification]\n",
                                f'[sources.dicom.deidentification]\nkeys = "{keys}"\n')
            jobs[keys] = tmp / f"job-{keys}.toml"
            jobs[keys].write_text(text)
        env = {k: v for k, v in os.environ.items() if k not in ("RUST_BACKTRACE", "RUST_LIB_BACKTRACE")}
        env["NASLAKE_PSEUDONYM_KEY"] = KEY
        results = {k: [] for k in jobs}
        for r in range(repeats):
            for keys, job in jobs.items():
                lake = tmp / f"lake-{keys}-{r}"
                wall, rss, _ = measure([BIN, "run", str(job), "--output", str(lake)], env)
                results[keys].append((wall, rss))
        print(f"corpus: {n} files ({size / 1e6:.1f} MB; the wheels' .dcm files x{copies}), "
              f"{repeats} alternating repeats, median wall time, median peak RSS")
        base = statistics.median(w for w, _ in results["keep"])
        for keys, runs in results.items():
            wall = statistics.median(w for w, _ in runs)
            rss = statistics.median(m for _, m in runs)
            print(f"keys = {keys:13} {wall:7.3f} s  {n / wall:9.0f} files/s  peak RSS {rss:6.1f} MiB  "
                  f"{wall / base:5.3f}x keep")


if __name__ == "__main__":
    main()
