#!/usr/bin/env bash
# Submits one sharded naslake run to AWS Batch: plan, then an array job of SHARDS
# work children, then the commit, each depending on the one before. The run id is
# chosen here, so every job knows the plan's address before the plan exists.
# Usage: submit-run.sh QUEUE JOB_SPEC INPUT OUTPUT CATALOG SHARDS
#   e.g. submit-run.sh naslake-queue /opt/naslake/jobs/sensor_readings.toml \
#          s3://my-ap-abc123-ext-s3alias/sensor s3://my-lake/lake glue:lake 16
set -euo pipefail
if [[ $# -ne 6 ]]; then
  sed -n '2,8p' "$0" >&2
  exit 2
fi
queue=$1 job=$2 input=$3 output=${4%/} catalog=$5 shards=$6
if (( shards < 2 )); then
  echo "an array job has 2 to 10000 children; for one shard, run the ECS task (naslake run)" >&2
  exit 2
fi
run_id="b$(date -u +%Y%m%d%H%M%S)-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
plan="$output/_naslake/runs/$run_id/plan.json"

plan_job=$(aws batch submit-job --job-name "naslake-plan-$run_id" --job-queue "$queue" \
  --job-definition naslake-plan \
  --parameters "job=$job,input=$input,output=$output,catalog=$catalog,shards=$shards,runid=$run_id" \
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
