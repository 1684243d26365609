"""naslake on Spark (EMR Serverless, or any Spark): a run in three steps.

    spark-submit naslake_spark.py JOB.toml --input URL --output URL --catalog SPEC --shards N

1. On the driver, `naslake plan` lists the input and splits it into N shards
   balanced by bytes; it prints the plan's address (OUTPUT/_naslake/runs/RUNID/plan.json).
2. One Spark task per shard runs `naslake work PLAN --shard I` as a subprocess of
   the Python worker. It inherits the executor's environment (settings from
   `spark.executorEnv.*`; credentials from the job runtime role through the default
   chain), and a non-zero exit fails the task, so Spark retries it (up to
   `spark.task.maxFailures`). Each attempt names its files apart; the commit keeps
   one attempt per shard. (Not `RDD.pipe`: it starts the child with an empty
   environment and, by default, ignores its exit code.)
3. On the driver, `naslake commit PLAN` checks that every shard has its result,
   computes the tables that need all of them (anomalies, findings), and commits the
   catalog once.

The exit code is `naslake run`'s: 0 succeeded, 1 failed (the catalog is as it was),
2 bad usage or config, 3 succeeded with rejects. The naslake binary is `NASLAKE_BIN`,
or `naslake` on the PATH. Runs on the Python of the EMR 7.x images (3.9) and later.
"""
import argparse
import os
import shutil
import subprocess
import sys

EXIT_FAILED = 1
EXIT_USAGE = 2


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="naslake_spark.py",
        description="Run a naslake job as Spark tasks, one per shard, with one catalog commit.")
    p.add_argument("job", help="the job spec (jobs/NAME.toml), on the driver's disk")
    p.add_argument("--input", help="input location; overrides the job spec's `input`")
    p.add_argument("--output", help="output location (an s3:// address, which every executor reaches)")
    p.add_argument("--catalog", help="local[:DIR] or glue[:DATABASE]")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a job spec key")
    p.add_argument("--shards", type=int, required=True, help="how many Spark tasks share the work")
    basis = p.add_mutually_exclusive_group()
    basis.add_argument("--incremental", action="store_true",
                       help="read only what changed since the job's last committed run (sharded or not)")
    basis.add_argument("--full", action="store_true",
                       help="read everything and start the incremental state anew")
    p.add_argument("--dry-run", action="store_true",
                   help="discover and check everything on the driver (`naslake plan --dry-run`), write nothing")
    args = p.parse_args(argv)
    if args.shards < 1:
        p.error("--shards must be at least 1")
    return args


def naslake_binary():
    path = os.environ.get("NASLAKE_BIN") or shutil.which("naslake")
    if not path:
        raise SystemExit("naslake_spark.py: no naslake binary: set NASLAKE_BIN or put naslake on the PATH")
    return path


def plan_command(binary, args):
    cmd = [binary, "plan", args.job, "--shards", str(args.shards)]
    if args.dry_run:
        cmd.append("--dry-run")
    if args.incremental:
        cmd.append("--incremental")
    if args.full:
        cmd.append("--full")
    for flag in ("input", "output", "catalog"):
        value = getattr(args, flag)
        if value:
            cmd += ["--" + flag, value]
    for o in args.overrides:
        cmd += ["--set", o]
    return cmd


def shard_task(binary, plan_url):
    """The function each Spark task runs: one `naslake work` for its partition's shard."""

    def run(index, _rows):
        from pyspark import TaskContext

        attempt = TaskContext.get().attemptNumber()
        cmd = [binary, "work", plan_url, "--shard", str(index), "--attempt", str(attempt)]
        # The shard's logs go straight to the executor's stderr (the job's logs on
        # EMR), as they happen: a killed task keeps what it logged.
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, universal_newlines=True)
        if proc.returncode != 0:
            raise RuntimeError("naslake work shard {} (attempt {}) exited {}; its log is in the executor's stderr".format(
                index, attempt, proc.returncode))
        yield index, proc.stdout.strip()

    return run


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    binary = naslake_binary()
    if args.dry_run:
        return subprocess.run(plan_command(binary, args)).returncode
    plan = subprocess.run(plan_command(binary, args), stdout=subprocess.PIPE, universal_newlines=True)
    if plan.returncode != 0:
        return plan.returncode
    plan_url = plan.stdout.strip().splitlines()[-1]
    print("naslake_spark: planned {} shards: {}".format(args.shards, plan_url), file=sys.stderr)

    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.appName("naslake {}".format(os.path.basename(args.job)))
             # Two live attempts of one shard would leave two results; the commit
             # refuses that, so no speculative copies.
             .config("spark.speculation", "false")
             .getOrCreate())
    try:
        sc = spark.sparkContext
        done = (sc.parallelize(range(args.shards), args.shards)
                .mapPartitionsWithIndex(shard_task(binary, plan_url))
                .collect())
    except Exception as e:  # a shard failed every attempt Spark gave it
        print("naslake_spark: shards failed, nothing was committed: {}".format(e), file=sys.stderr)
        spark.stop()
        return EXIT_FAILED
    spark.stop()
    print("naslake_spark: {} shards written; committing".format(len(done)), file=sys.stderr)
    return subprocess.run([binary, "commit", plan_url]).returncode


if __name__ == "__main__":
    sys.exit(main())
