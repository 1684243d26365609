#!/usr/bin/env bash
# Submits one sharded naslake run to AWS Batch: plan, then an array job of SHARDS
# work children, then the commit, each depending on the one before. The run id is
# chosen here, so every job knows the plan's address before the plan exists.
# Usage: submit-run.sh QUEUE JOB_SPEC INPUT OUTPUT CATALOG SHARDS [--incremental|--full]
#   e.g. submit-run.sh naslake-queue /opt/naslake/jobs/sensor_readings.toml \
#          s3://my-ap-abc123-ext-s3alias/sensor s3://my-lake/lake glue:lake 16 --incremental
#   --incremental: read only what changed since the job's last commit; --full (the
#   default, as before sharded runs could be incremental): read everything.
set -euo pipefail

# A new run id: a ULID in lowercase (48 bits of milliseconds, 80 random bits, in
# Crockford's base 32), as naslake's own; recovery orders runs by their ids.
ulid() {
  local alphabet=0123456789abcdefghjkmnpqrstvwxyz ms out="" i
  ms=$(( $(date +%s%N) / 1000000 ))
  for ((i = 0; i < 10; i++)); do out="${alphabet:$(( ms % 32 )):1}$out"; ms=$(( ms / 32 )); done
  for ((i = 0; i < 16; i++)); do out+="${alphabet:$(( $(od -An -N1 -tu1 /dev/urandom) % 32 )):1}"; done
  echo "$out"
}

if [[ $# -ne 6 && $# -ne 7 ]]; then
  sed -n '2,10p' "$0" >&2
  exit 2
fi
queue=$1 job=$2 input=$3 output=${4%/} catalog=$5 shards=$6 basis=${7:---full}
if [[ $basis != --incremental && $basis != --full ]]; then
  echo "the basis is --incremental or --full, not $basis" >&2
  exit 2
fi
if (( shards < 2 )); then
  echo "an array job has 2 to 10000 children; for one shard, run the ECS task (naslake run)" >&2
  exit 2
fi
run_id=$(ulid)
plan="$output/_naslake/runs/$run_id/plan.json"

plan_job=$(aws batch submit-job --job-name "naslake-plan-$run_id" --job-queue "$queue" \
  --job-definition naslake-plan \
  --parameters "job=$job,input=$input,output=$output,catalog=$catalog,shards=$shards,runid=$run_id,basis=$basis" \
  --query jobId --output text)
work_job=$(aws batch submit-job --job-name "naslake-work-$run_id" --job-queue "$queue" \
  --job-definition naslake-work --array-properties "size=$shards" \
  --depends-on "jobId=$plan_job" --parameters "plan=$plan" \
  --query jobId --output text)
commit_job=$(aws batch submit-job --job-name "naslake-commit-$run_id" --job-queue "$queue" \
  --job-definition naslake-commit --depends-on "jobId=$work_job" --parameters "plan=$plan" \
  --query jobId --output text)
echo "run $run_id: plan $plan_job, work $work_job ($shards shards), commit $commit_job"
echo "plan: $plan"
