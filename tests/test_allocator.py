"""The binary's allocator starts with the options `src/main.rs` builds in. jemalloc
takes them from an exported symbol, so a renamed symbol, a prefix that changed
with the crate, or a misspelt option would leave its defaults in place without a
word, and with them the peak RSS that docs/benchmarks.md measured them against."""
import os
import pathlib
import re
import subprocess
import time

from conftest import BIN

# stats_print prints at exit; the letters leave out all but the general section,
# which lists the options in effect.
STATS = "stats_print:true,stats_print_opts:mdablxe"


def allocator_options(conf):
    """jemalloc's `opt.*` values, as it prints them at exit with `conf` added, and
    all it wrote to stderr (its complaints about options among it)."""
    env = dict(os.environ, _RJEM_MALLOC_CONF=conf)
    run = subprocess.run([BIN, "--version"], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    options = dict(re.findall(r"^\s+opt\.(\w+): (\S+)", run.stderr, re.M))
    assert options, f"jemalloc printed no options: not the allocator in use?\n{run.stderr}"
    return options, run.stderr


def cpu_counts_agree():
    """What jemalloc checks before it keeps one arena per CPU: online, configured
    and allowed CPUs are as many (not so in a cpuset or under taskset)."""
    allowed = len(os.sched_getaffinity(0))
    return os.sysconf("SC_NPROCESSORS_ONLN") == os.sysconf("SC_NPROCESSORS_CONF") == allowed


def test_the_built_in_options_are_in_effect():
    options, stderr = allocator_options(STATS)
    # dirty_decay_ms is not jemalloc's default (10 s): it shows the symbol was read.
    assert options.get("dirty_decay_ms") == "1000", stderr
    assert options.get("muzzy_decay_ms") == "0", stderr
    if cpu_counts_agree():
        assert "<jemalloc>" not in stderr, stderr  # how jemalloc reports what it refused
        assert options.get("percpu_arena") == '"percpu"', stderr
    else:
        # jemalloc's documented fallback (docs/command-line.md), not a refused option.
        assert "Per-CPU arena disabled" in stderr, stderr
        assert options.get("percpu_arena") == '"disabled"', stderr


def test_the_environment_still_overrides_them():
    # What docs/benchmarks.md's comparisons relied on: a setting tried without a rebuild.
    options, stderr = allocator_options(STATS + ",percpu_arena:disabled,dirty_decay_ms:300")
    assert options.get("percpu_arena") == '"disabled"', stderr
    assert options.get("dirty_decay_ms") == "300", stderr


def version_stderr(**env):
    run = subprocess.run([BIN, "--version"], env=dict(os.environ, **env),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stderr


def test_the_ceiling_on_freed_pages_starts_quietly_and_its_switch_is_read():
    # The thread looks jemalloc's controls up as the process starts: a control
    # renamed in a newer jemalloc would be reported here, not measured later.
    # (jemalloc itself may write its per-CPU fallback line: not naslake's.)
    assert "naslake:" not in version_stderr()
    assert "naslake:" not in version_stderr(NASLAKE_FREED_PAGES_CEILING="off")
    # A value it does not know is named, and the ceiling stays.
    stderr = version_stderr(NASLAKE_FREED_PAGES_CEILING="0")
    assert "NASLAKE_FREED_PAGES_CEILING is `off` or unset" in stderr, stderr


def thread_names_while_waiting(tmp_path, until, **env):
    """The names of a naslake process's threads (one entry per thread), taken
    while it waits, once `until(names)` holds: `sniff` opening a FIFO blocks
    until a writer comes, after the process has started its threads."""
    fifo = tmp_path / "waits.csv"
    os.mkfifo(fifo)
    proc = subprocess.Popen([BIN, "sniff", str(fifo)], env=dict(os.environ, **env),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        names = []
        for _ in range(100):  # at most 10 s
            names = []
            for task in pathlib.Path(f"/proc/{proc.pid}/task").glob("*/comm"):
                try:
                    names.append(task.read_text().strip())
                except OSError:
                    pass  # a thread that ended between the listing and the read
            if until(names):
                return names
            time.sleep(0.1)
        raise AssertionError(f"naslake's threads never got there: {names}")
    finally:
        proc.kill()  # also ends the blocked open of the FIFO
        proc.wait(timeout=60)


def test_the_ceiling_runs_in_a_thread_of_its_own_unless_switched_off(tmp_path):
    (tmp_path / "on").mkdir()
    (tmp_path / "off").mkdir()
    # A thread names itself once it runs, so the test waits for the name.
    thread_names_while_waiting(tmp_path / "on", lambda names: "freed-pages" in names)
    # Switched off: once the runtime's workers run, every thread but the main
    # one has named itself (a thread not yet named shows the binary's name).
    main = pathlib.Path(BIN).name[:15]  # the kernel keeps 15 bytes of a name
    names = thread_names_while_waiting(
        tmp_path / "off",
        lambda names: "tokio-rt-worker" in names and names.count(main) == 1,
        NASLAKE_FREED_PAGES_CEILING="off")
    assert "freed-pages" not in names, names
