"""What can be checked of deploy/ without a Docker engine or an AWS account: the
CloudFormation templates pass cfn-lint, the Dockerfiles keep what their base images
require, the policies are valid JSON, the Spark driver parses on the Python of the
EMR 7.x images, and the binary the images copy in needs no newer glibc than theirs."""
import ast
import json
import pathlib
import re
import subprocess
import sys

from conftest import BIN, ROOT

DEPLOY = ROOT / "deploy"
# Amazon Linux 2023 (the EMR Serverless 7.x images) has glibc 2.34; the ECS image's
# base (distroless, Debian 12) has 2.36.
OLDEST_GLIBC = (2, 34)


def dockerfile(path):
    """(instruction, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_cloudformation_templates_pass_cfn_lint():
    templates = sorted(DEPLOY.rglob("*.yaml"))
    assert [t.relative_to(DEPLOY).as_posix() for t in templates] == [
        "batch/naslake-batch.yaml", "ecs/naslake-ecs.yaml"]
    lint = pathlib.Path(sys.executable).parent / "cfn-lint"
    p = subprocess.run([str(lint), *map(str, templates)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_the_templates_have_what_the_issue_names():
    ecs = (DEPLOY / "ecs" / "naslake-ecs.yaml").read_text()
    for needed in ["AWS::ECS::TaskDefinition", "AWS::Scheduler::Schedule", "mode: non-blocking",
                   "Secrets:", "ECS Task State Change", "anything-but: 0"]:
        assert needed in ecs, needed
    batch = (DEPLOY / "batch" / "naslake-batch.yaml").read_text()
    assert "--shard-from-env" in batch and "[commit, Ref::plan]" in batch
    submit = (DEPLOY / "batch" / "submit-run.sh").read_text()
    assert "--array-properties" in submit and submit.count("--depends-on") == 2


def test_the_emr_image_changes_only_files_and_ends_as_hadoop():
    steps = dockerfile(DEPLOY / "emr-serverless" / "Dockerfile")
    froms = [a for i, a in steps if i == "FROM"]
    assert froms == ["public.ecr.aws/emr-serverless/spark/${EMR_RELEASE}:latest"]
    assert any(i == "ARG" and a.startswith("EMR_RELEASE=emr-7.") for i, a in steps)
    # Root for the install, hadoop:hadoop at the end; user, working directory,
    # entry point, JAVA_HOME and SPARK_HOME as the base image has them.
    users = [a for i, a in steps if i == "USER"]
    assert users[0] == "root" and users[-1] == "hadoop:hadoop"
    assert not [i for i, _ in steps if i in ("ENTRYPOINT", "CMD", "WORKDIR")]
    assert not [a for i, a in steps if i == "ENV" and re.search(r"JAVA_HOME|SPARK_HOME|PATH", a)]
    copied = [a.split()[0] for i, a in steps if i == "COPY"]
    assert "target/release/naslake" in copied and "deploy/emr-serverless/naslake_spark.py" in copied


def test_the_ecs_image_is_non_root_and_needs_no_shell():
    steps = dockerfile(DEPLOY / "ecs" / "Dockerfile")
    assert [a for i, a in steps if i == "FROM"] == ["gcr.io/distroless/cc-debian12:nonroot"]
    assert not [i for i, _ in steps if i == "RUN"], "distroless has no shell to run it"
    user = [a for i, a in steps if i == "USER"][-1]
    assert not user.startswith(("root", "0"))
    assert ("ENTRYPOINT", '["/usr/local/bin/naslake"]') in steps


def test_policies_are_json_and_name_the_service():
    emr = DEPLOY / "emr-serverless"
    ecr = json.loads((emr / "ecr-repository-policy.json").read_text())
    assert ecr["Statement"][0]["Principal"] == {"Service": "emr-serverless.amazonaws.com"}
    trust = json.loads((emr / "trust-policy.json").read_text())
    assert trust["Statement"][0]["Principal"]["Service"] == "emr-serverless.amazonaws.com"
    role = json.loads((emr / "runtime-role-policy.json").read_text())
    actions = {a for s in role["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert {"s3:GetObject", "s3:PutObject", "glue:UpdateTable", "glue:BatchCreatePartition"} <= actions


def test_the_spark_driver_parses_on_python_3_9():
    source = (DEPLOY / "emr-serverless" / "naslake_spark.py").read_text()
    ast.parse(source, feature_version=(3, 9))


def glibc_versions(binary):
    out = subprocess.run(["objdump", "-T", binary], capture_output=True, text=True, check=True).stdout
    return sorted({tuple(map(int, v.split("."))) for v in re.findall(r"GLIBC_(\d+(?:\.\d+)+)", out)})


def test_the_binary_runs_on_the_images_glibc():
    versions = glibc_versions(BIN)
    assert versions, "objdump found no glibc symbols: not a dynamically linked glibc binary?"
    assert versions[-1] <= OLDEST_GLIBC, f"needs GLIBC_{'.'.join(map(str, versions[-1]))}"
