"""No credential reaches a log line, an error message or a run report.

Jobs run against moto server (scripts/test) with distinctive made-up credentials
(moto accepts any), from the environment and from a named profile, with
NASLAKE_LOG=debug (every crate's debug logs, the AWS SDK's and object_store's
included) in JSON and in text; then every line on stdout and stderr and every
object under the output's `_naslake/` is searched for each secret. Addresses and
endpoints with user-info (`scheme://user:password@host`) are refused as bad
configuration, saying so without echoing the password."""
import os
import uuid

import boto3
import pytest

from conftest import ROOT, SENSOR_JOB, naslake

MOTO = os.environ.get("NASLAKE_TEST_MOTO")
pytestmark = pytest.mark.skipif(not MOTO, reason="needs moto server: run scripts/test")
REGION = "us-east-1"
CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": REGION}

# Made up, and unlike anything a log line would hold by chance.
ENV_KEY_ID = "AKIANASLAKEENVQ7Z3XK"
ENV_SECRET = "envSecret-Zq8vX1-hunter2-9f3b"
ENV_TOKEN = "envSessionToken-Pl4c3b0-7c1e"
PROFILE_KEY_ID = "AKIANASLAKEPROF5W2M8"
PROFILE_SECRET = "profSecret-Rt6yU2-hunter3-a41d"
PROFILE_TOKEN = "profSessionToken-Kx9q-52be"
# A temporary key id (ASIA…), as the SDK gets from STS, SSO or a process.
PROCESS_KEY_ID = "ASIANASLAKEPROCJ4T6V"
PROCESS_SECRET = "procSecret-Hb3nW7-hunter4-0c9e"
PROCESS_TOKEN = "procSessionToken-Yd2f-8a17"
URL_PASSWORD = "hunter2-SECRET"
URL_USER = "urlUser-Mq71"
LOG_FORMATS = ["json", "text"]


@pytest.fixture(scope="module")
def buckets():
    """A bucket with the sensor samples, and one for the lake."""
    s3 = boto3.client("s3", endpoint_url=MOTO, **CREDS)
    data = f"sec-{uuid.uuid4().hex[:8]}"
    lake = f"sec-lake-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=data)
    s3.create_bucket(Bucket=lake)
    samples = ROOT / "samples" / "sensor"
    for p in samples.rglob("*"):
        if p.is_file():
            s3.upload_file(str(p), data, f"sensor/{p.relative_to(samples).as_posix()}")
    return {"data": data, "lake": lake, "s3": s3}


def base_env(tmp_path, log_format):
    """The test's environment without any AWS_ setting, plus debug logs of everything."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        # Every crate at debug, the storage and HTTP crates named so they speak too.
        NASLAKE_LOG="debug,object_store=debug,reqwest=debug,hyper=debug,hyper_util=debug,h2=debug,"
                    "aws_smithy_runtime=debug,aws_smithy_http_client=debug,aws_sdk_s3=debug,aws_config=debug",
        NASLAKE_LOG_FORMAT=log_format,
        NASLAKE_RETRY_BASE_MS="50",
        AWS_ENDPOINT_URL=f"http://localhost:{MOTO.rsplit(':', 1)[1]}",
        AWS_ENDPOINT_URL_GLUE=MOTO,
        # No shared files of the machine's user: only what a test writes.
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def run(env, *args, check_codes=(0, 3)):
    return naslake(*args, env=env, replace_env=True, check_codes=check_codes)


def assert_no_secret(secrets, **texts):
    """None of `secrets` in any line of any of `texts` (name -> text)."""
    for name, text in texts.items():
        for n, line in enumerate(text.splitlines(), 1):
            for secret in secrets:
                assert secret not in line, f"{name} line {n} holds a secret: {line}"


def naslake_objects(buckets, prefix):
    """Every object under s3://LAKE/PREFIX/_naslake/ (the run reports), by key."""
    s3 = buckets["s3"]
    listed = s3.list_objects_v2(Bucket=buckets["lake"], Prefix=f"{prefix}/_naslake/")
    keys = [o["Key"] for o in listed.get("Contents", [])]
    return {k: s3.get_object(Bucket=buckets["lake"], Key=k)["Body"].read().decode() for k in keys}


def job_through_s3_and_glue(env, buckets, prefix, secrets):
    """The sensor job from one bucket into another, registered in Glue (moto), then
    the query command over that catalog: all of it free of `secrets`."""
    db = f"sec_{uuid.uuid4().hex[:8]}"
    r = run(env, "run", SENSOR_JOB, "--input", f"s3://{buckets['data']}/sensor",
            "--output", f"s3://{buckets['lake']}/{prefix}", "--catalog", f"glue:{db}")
    assert r.code == 3, r.stdout + r.stderr
    # Debug logs were on (a run with none would prove nothing).
    assert "DEBUG" in r.stdout + r.stderr or '"level":"DEBUG"' in r.stdout + r.stderr
    reports = naslake_objects(buckets, prefix)
    assert any(k.endswith(".json") and "/runs/" in k for k in reports), reports.keys()
    assert_no_secret(secrets, stdout=r.stdout, stderr=r.stderr, **reports)
    q = run(env, "query", "SELECT count(*) AS n FROM sensor_readings", "--catalog", f"glue:{db}",
            "--format", "csv", check_codes=(0,))
    assert int(q.stdout.splitlines()[1]) > 300, q.stdout
    assert_no_secret(secrets, query_stdout=q.stdout, query_stderr=q.stderr)


@pytest.mark.parametrize("log_format", LOG_FORMATS)
def test_credentials_from_the_environment_are_never_logged(tmp_path, buckets, log_format):
    env = base_env(tmp_path, log_format)
    env.update(AWS_ACCESS_KEY_ID=ENV_KEY_ID, AWS_SECRET_ACCESS_KEY=ENV_SECRET,
               AWS_SESSION_TOKEN=ENV_TOKEN, AWS_REGION=REGION)
    job_through_s3_and_glue(env, buckets, f"env-{log_format}", [ENV_KEY_ID, ENV_SECRET, ENV_TOKEN])


@pytest.mark.parametrize("log_format", LOG_FORMATS)
def test_credentials_from_a_profile_are_never_logged(tmp_path, buckets, log_format):
    creds = tmp_path / "credentials"
    creds.write_text(f"[naslake-secrets]\naws_access_key_id = {PROFILE_KEY_ID}\n"
                     f"aws_secret_access_key = {PROFILE_SECRET}\naws_session_token = {PROFILE_TOKEN}\n")
    config = tmp_path / "config"
    config.write_text(f"[profile naslake-secrets]\nregion = {REGION}\n")
    env = base_env(tmp_path, log_format)
    env.update(AWS_PROFILE="naslake-secrets", AWS_SHARED_CREDENTIALS_FILE=str(creds),
               AWS_CONFIG_FILE=str(config))
    job_through_s3_and_glue(env, buckets, f"profile-{log_format}",
                            [PROFILE_KEY_ID, PROFILE_SECRET, PROFILE_TOKEN])


@pytest.mark.parametrize("log_format", LOG_FORMATS)
def test_credentials_from_a_credential_process_are_never_logged(tmp_path, buckets, log_format):
    """Keys the AWS SDK resolves (here from a credential_process, as for SSO and role
    profiles), for the S3 stores and for Glue."""
    process = tmp_path / "creds.sh"
    process.write_text("#!/bin/sh\n"
                       f'echo \'{{"Version": 1, "AccessKeyId": "{PROCESS_KEY_ID}", '
                       f'"SecretAccessKey": "{PROCESS_SECRET}", "SessionToken": "{PROCESS_TOKEN}"}}\'\n')
    process.chmod(0o755)
    config = tmp_path / "config"
    config.write_text(f"[profile naslake-proc]\nregion = {REGION}\ncredential_process = {process}\n")
    env = base_env(tmp_path, log_format)
    env.update(AWS_PROFILE="naslake-proc", AWS_CONFIG_FILE=str(config))
    job_through_s3_and_glue(env, buckets, f"process-{log_format}",
                            [PROCESS_KEY_ID, PROCESS_SECRET, PROCESS_TOKEN])


def user_info_env(tmp_path, log_format):
    env = base_env(tmp_path, log_format)
    env.update(AWS_ACCESS_KEY_ID=ENV_KEY_ID, AWS_SECRET_ACCESS_KEY=ENV_SECRET, AWS_REGION=REGION)
    return env


def assert_refused(r, *expected):
    """A clear usage error (exit 2) that names what is wrong and echoes no secret."""
    out = r.stdout + r.stderr
    assert r.code == 2, out
    for e in expected:
        assert e in r.stderr, r.stderr
    assert_no_secret([URL_PASSWORD, URL_USER, ENV_KEY_ID, ENV_SECRET], stdout=r.stdout, stderr=r.stderr)


@pytest.mark.parametrize("log_format", LOG_FORMATS)
@pytest.mark.parametrize("flag", ["--input", "--output"])
def test_an_address_with_user_info_is_refused_without_echoing_it(tmp_path, buckets, log_format, flag):
    bucket = buckets["data"] if flag == "--input" else buckets["lake"]
    addresses = {"--input": f"s3://{buckets['data']}/sensor", "--output": f"s3://{buckets['lake']}/never"}
    for address in [f"s3://{URL_USER}:{URL_PASSWORD}@{bucket}/x", f"s3://{URL_PASSWORD}@{bucket}/x",
                    f"file://{URL_USER}:{URL_PASSWORD}@host/x"]:
        args = dict(addresses, **{flag: address})
        r = run(user_info_env(tmp_path, log_format), "run", SENSOR_JOB, "--input", args["--input"],
                "--output", args["--output"], "--catalog", f"local:{tmp_path / 'catalog'}", check_codes=None)
        assert_refused(r, "bad address", "no user name or password", address.split("://")[0] + "://***@")
    # Nothing was written for the refused runs.
    assert naslake_objects(buckets, "never") == {}
    assert not (tmp_path / "catalog").exists()


@pytest.mark.parametrize("log_format", LOG_FORMATS)
@pytest.mark.parametrize("var", ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"])
def test_an_s3_endpoint_with_user_info_is_refused_without_echoing_it(tmp_path, buckets, log_format, var):
    env = user_info_env(tmp_path, log_format)
    port = MOTO.rsplit(":", 1)[1]
    env[var] = f"http://{URL_USER}:{URL_PASSWORD}@localhost:{port}"
    r = run(env, "run", SENSOR_JOB, "--input", f"s3://{buckets['data']}/sensor",
            "--output", tmp_path / "lake", check_codes=None)
    assert_refused(r, var, f"http://***@localhost:{port}", "no user name or password")
    assert not (tmp_path / "lake").exists()


@pytest.mark.parametrize("log_format", LOG_FORMATS)
def test_a_glue_endpoint_with_user_info_is_refused_without_echoing_it(tmp_path, log_format):
    env = user_info_env(tmp_path, log_format)
    env["AWS_ENDPOINT_URL_GLUE"] = MOTO.replace("http://", f"http://{URL_USER}:{URL_PASSWORD}@")
    r = run(env, "run", SENSOR_JOB, "--output", tmp_path / "lake", "--catalog", "glue:sec_never",
            check_codes=None)
    assert_refused(r, "AWS_ENDPOINT_URL_GLUE", "http://***@127.0.0.1", "no user name or password")
    q = run(env, "catalog", "list", "--catalog", "glue:sec_never", check_codes=None)
    assert_refused(q, "AWS_ENDPOINT_URL_GLUE", "http://***@127.0.0.1")
