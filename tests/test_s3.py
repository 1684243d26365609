"""The sensor job through an S3 access point (ARN) into a bucket, against moto server
speaking the real S3 and S3 Control APIs on a loopback port (started by scripts/test).
The result is read back from the server with pyarrow and must equal a local run."""
import os
import pathlib
import uuid

import boto3
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pytest

from conftest import ROOT, SENSOR_JOB, arrow_table, create_access_point, naslake

MOTO = os.environ.get("NASLAKE_TEST_MOTO")
pytestmark = pytest.mark.skipif(not MOTO, reason="needs moto server: run scripts/test")
ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": REGION}


@pytest.fixture(scope="module")
def aws_env():
    port = MOTO.rsplit(":", 1)[1]
    # naslake derives access point hosts from the endpoint: with `localhost` they are
    # NAME-ACCOUNT.s3-accesspoint.localhost:PORT, which it resolves to 127.0.0.1.
    return {
        "AWS_ENDPOINT_URL": f"http://localhost:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "NASLAKE_RETRY_BASE_MS": "50",
    }


@pytest.fixture(scope="module")
def volume():
    """A bucket standing in for the FSx volume, the samples in it, and an access point."""
    s3 = boto3.client("s3", endpoint_url=MOTO, **CREDS)
    name = f"vol-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    samples = ROOT / "samples" / "sensor"
    for p in samples.rglob("*"):
        if p.is_file():
            s3.upload_file(str(p), name, f"data/sensor/{p.relative_to(samples).as_posix()}")
    arn = create_access_point(MOTO, name, REGION, ACCOUNT)
    lake = f"lake-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=lake)
    return {"bucket": name, "arn": arn, "lake": lake}


def rows(table):
    cols = sorted(table.column_names)
    return sorted((tuple(r[c] for c in cols) for r in table.to_pylist()), key=repr)


def s3_table(lake_bucket, prefix, table, partitioned=True):
    fs = pafs.S3FileSystem(endpoint_override=MOTO.replace("http://", ""), scheme="http",
                           access_key="testing", secret_key="testing", region=REGION)
    return pads.dataset(f"{lake_bucket}/{prefix}/{table}", filesystem=fs, format="parquet",
                        partitioning="hive" if partitioned else None).to_table()


@pytest.mark.parametrize("form", ["arn", "s3-arn"])
def test_job_reads_through_an_access_point_and_writes_to_a_bucket(tmp_path, aws_env, volume, sample_lake, form):
    arn = f"{volume['arn']}/data/sensor"
    address = arn if form == "arn" else f"s3://{arn}"
    out = f"s3://{volume['lake']}/{form}"
    run = naslake("run", SENSOR_JOB, "--input", address, "--output", out, "--catalog", f"local:{tmp_path}", env=aws_env)
    assert run.code == 3, run.stdout + run.stderr
    for table, partitioned in [("sensor_readings", True), ("sensor_rejects", False), ("sensor_anomalies", True)]:
        remote = s3_table(volume["lake"], form, table, partitioned)
        local = arrow_table(sample_lake.lake, table, partitioned)
        assert remote.num_rows > 0
        # Same rows, same lineage keys: the same table from a folder and from S3.
        assert rows(remote) == rows(local), table
    # The catalog points at the bucket, and query reads the files back through S3.
    out_csv = naslake("query", "SELECT count(*) AS n FROM sensor_readings", "--catalog", f"local:{tmp_path}",
                      "--format", "csv", env=aws_env).stdout
    assert out_csv.splitlines()[1] == str(arrow_table(sample_lake.lake, "sensor_readings").num_rows)


def test_bucket_to_bucket_and_plain_bucket_input(tmp_path, aws_env, volume):
    run = naslake("run", SENSOR_JOB, "--input", f"s3://{volume['bucket']}/data/sensor",
                  "--output", f"s3://{volume['lake']}/plain", "--catalog", f"local:{tmp_path}", env=aws_env)
    assert run.code == 3, run.stderr
    assert s3_table(volume["lake"], "plain", "sensor_readings").num_rows > 300


def test_output_inside_the_input_bucket_prefix_is_refused(tmp_path, aws_env, volume):
    run = naslake("run", SENSOR_JOB, "--input", f"s3://{volume['bucket']}/data",
                  "--output", f"s3://{volume['bucket']}/data/lake", env=aws_env, check_codes=None)
    assert run.code == 2 and "read-only" in run.stderr


def test_malformed_addresses_show_the_accepted_forms(tmp_path, aws_env):
    for bad in ["arn:aws:s3:us-east-1:123:accesspoint/x", "s3://No_Such/x", "ftp://x/y"]:
        run = naslake("run", SENSOR_JOB, "--input", bad, "--output", tmp_path / "lake", env=aws_env, check_codes=None)
        assert run.code == 2, bad
        assert "accepted forms" in run.stderr and "accesspoint/NAME" in run.stderr, run.stderr


def test_faults_on_the_wire_do_not_change_the_output(tmp_path, aws_env, volume, sample_lake):
    """503 SlowDown, dropped connections and slow answers on a fraction of requests:
    the job retries, finishes, and writes exactly what a fault-free run writes."""
    from faulty_proxy import FaultyProxy

    upstream = int(MOTO.rsplit(":", 1)[1])
    with FaultyProxy(upstream, seed=11) as proxy:
        env = dict(aws_env, AWS_ENDPOINT_URL=f"http://localhost:{proxy.port}")
        run = naslake("run", SENSOR_JOB, "--input", f"{volume['arn']}/data/sensor",
                      "--output", f"s3://{volume['lake']}/faulty", "--catalog", f"local:{tmp_path}", env=env)
    assert run.code == 3, run.stdout + run.stderr
    assert proxy.counts["slow_down"] > 0 and proxy.counts["reset"] > 0 and proxy.counts["delay"] > 0, proxy.counts
    for table, partitioned in [("sensor_readings", True), ("sensor_rejects", False), ("sensor_anomalies", True)]:
        assert rows(s3_table(volume["lake"], "faulty", table, partitioned)) == rows(
            arrow_table(sample_lake.lake, table, partitioned)), table


def test_credentials_from_a_named_profile(tmp_path, aws_env, volume):
    """No keys in the environment: they come from AWS_PROFILE in the shared files."""
    creds = tmp_path / "credentials"
    creds.write_text("[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n"
                     "[naslake-test]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    config = tmp_path / "config"
    config.write_text(f"[profile naslake-test]\nregion = {REGION}\n")
    env = {k: v for k, v in aws_env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")}
    env.update(AWS_PROFILE="naslake-test", AWS_SHARED_CREDENTIALS_FILE=str(creds), AWS_CONFIG_FILE=str(config))
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    run = naslake("run", SENSOR_JOB, "--input", f"{volume['arn']}/data/sensor", "--output", f"s3://{volume['lake']}/profile",
                  "--catalog", f"local:{tmp_path}", env={**clean, **env}, replace_env=True)
    assert run.code == 3, run.stderr
    assert s3_table(volume["lake"], "profile", "sensor_readings").num_rows > 300
    missing = naslake("run", SENSOR_JOB, "--input", f"{volume['arn']}/data/sensor", "--output", f"s3://{volume['lake']}/x",
                      env={**clean, **env, "AWS_PROFILE": "nope"}, replace_env=True, check_codes=None)
    assert missing.code == 2 and "AWS_PROFILE=nope" in missing.stderr


def test_credential_process_profile_for_s3_and_glue(tmp_path, aws_env, volume):
    """A profile that runs a credential_process (as SSO and role profiles need the SDK
    too): S3 reads and writes and the Glue catalog all get keys from the process."""
    marker = tmp_path / "calls"
    process = tmp_path / "creds.sh"
    process.write_text("#!/bin/sh\necho call >> " + str(marker) + "\n"
                       'echo \'{"Version": 1, "AccessKeyId": "testing", "SecretAccessKey": "testing"}\'\n')
    process.chmod(0o755)
    config = tmp_path / "config"
    config.write_text(f"[profile proc]\nregion = {REGION}\ncredential_process = {process}\n")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env = {k: v for k, v in aws_env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")}
    env.update(AWS_PROFILE="proc", AWS_CONFIG_FILE=str(config), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_ENDPOINT_URL_GLUE=MOTO)
    db = f"p_{uuid.uuid4().hex[:8]}"
    run = naslake("run", SENSOR_JOB, "--input", f"{volume['arn']}/data/sensor", "--output", f"s3://{volume['lake']}/proc",
                  "--catalog", f"glue:{db}", env={**clean, **env}, replace_env=True)
    assert run.code == 3, run.stderr
    assert s3_table(volume["lake"], "proc", "sensor_readings").num_rows > 300
    glue = boto3.client("glue", endpoint_url=MOTO, **CREDS)
    assert {t["Name"] for t in glue.get_tables(DatabaseName=db)["TableList"]} >= {"sensor_readings"}
    # The process ran (for the S3 stores and for Glue), and its keys were cached
    # rather than fetched per request.
    calls = marker.read_text().count("call")
    assert 2 <= calls <= 8, calls
