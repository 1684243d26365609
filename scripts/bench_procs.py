"""Timing several processes started at once, for the benchmarks that compare naslake
with a Python baseline at equal cores (one Python process per core)."""
import contextlib
import os
import subprocess
import tempfile
import time


def measure(cmds, env=None):
    """Starts every command at once and waits for all of them: the wall time from
    the first start to the last exit, the sum of the processes' own peak RSS in MiB
    (wait4(): the kernel's ru_maxrss of each one, not the maximum over children),
    each one's wall time, and their outputs. Output goes to files, so a chatty child
    never blocks on a pipe. The script has no other children while this runs, so
    wait4(-1) reaps only these, in the order they exit."""
    with contextlib.ExitStack() as stack:
        files = [(stack.enter_context(tempfile.TemporaryFile()), stack.enter_context(tempfile.TemporaryFile()))
                 for _ in cmds]
        start = time.perf_counter()
        procs = {}
        for i, (cmd, (o, e)) in enumerate(zip(cmds, files)):
            p = subprocess.Popen(cmd, stdout=o, stderr=e, env=env)
            procs[p.pid] = (i, p)
        walls, rss, codes = [0.0] * len(cmds), [0.0] * len(cmds), [0] * len(cmds)
        while procs:
            pid, status, usage = os.wait4(-1, 0)
            if pid not in procs:
                continue
            i, p = procs.pop(pid)
            walls[i] = time.perf_counter() - start
            rss[i] = usage.ru_maxrss / 1024
            codes[i] = p.returncode = os.waitstatus_to_exitcode(status)
        outs = []
        for cmd, code, (o, e) in zip(cmds, codes, files):
            o.seek(0)
            e.seek(0)
            out, err = o.read().decode(), e.read().decode()
            if code not in (0, 3):
                raise SystemExit(f"{cmd[0]} failed ({code}):\n{out}\n{err}")
            outs.append(out)
    return max(walls), sum(rss), walls, outs
