"""The binary's allocator starts with the options `src/main.rs` builds in. jemalloc
takes them from an exported symbol, so a renamed symbol, a prefix that changed
with the crate, or a misspelt option would leave its defaults in place without a
word, and with them the peak RSS that docs/benchmarks.md measured them against."""
import os
import re
import subprocess

from conftest import BIN


def allocator_options(conf):
    """jemalloc's `opt.*` lines, as it prints them at exit with `conf` added, and
    what else it wrote to stderr (its complaints about options)."""
    env = dict(os.environ, _RJEM_MALLOC_CONF=conf)
    run = subprocess.run([BIN, "--version"], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    options = dict(re.findall(r"^\s+opt\.(\w+): (\S+)", run.stderr, re.M))
    return options, run.stderr


# stats_print prints at exit; the letters leave out all but the general section.
STATS = "stats_print:true,stats_print_opts:mdablxe"


def test_the_built_in_options_are_in_effect():
    options, stderr = allocator_options(STATS)
    assert "<jemalloc>" not in stderr, stderr  # how jemalloc reports an option it refused
    assert options["percpu_arena"] == '"percpu"'
    assert options["dirty_decay_ms"] == "1000"
    assert options["muzzy_decay_ms"] == "0"


def test_the_environment_still_overrides_them():
    # What docs/benchmarks.md's comparisons relied on: a setting tried without a rebuild.
    options, _ = allocator_options(STATS + ",percpu_arena:disabled,dirty_decay_ms:300")
    assert options["percpu_arena"] == '"disabled"'
    assert options["dirty_decay_ms"] == "300"
    assert options["muzzy_decay_ms"] == "0"
