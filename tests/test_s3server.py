"""The local S3 server the tests and benchmarks use (tests/s3server.py): its request log and the
relay that counts what clients read, so that what they measure can be trusted."""

from __future__ import annotations

import os

import boto3
import pytest

from tests.s3server import KEY_ID, REGION, SECRET, CountingProxy, S3Server


def test_the_relay_counts_the_bytes_a_client_reads_and_the_log_its_requests(s3_server):
    bucket = s3_server.bucket("relay")
    body = bytes(range(256)) * 400  # 102,400 bytes
    s3_server.client().put_object(Bucket=bucket, Key="blob", Body=body)
    relay = CountingProxy(s3_server.port)
    try:
        client = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{relay.port}",
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
            region_name=REGION,
        )
        mark = s3_server.mark()
        got = client.get_object(Bucket=bucket, Key="blob", Range="bytes=0-49999")["Body"].read()
        first = relay.received
        client.head_object(Bucket=bucket, Key="blob")
    finally:
        relay.close()
    assert len(got) == 50_000
    assert 50_000 < first < 52_000  # the body and its headers
    assert 0 < relay.received - first < 2_000  # a HEAD: headers only
    requests = [(r.method, r.key, r.status) for r in s3_server.requests_since(mark)]
    assert requests == [("GET", f"{bucket}/blob", 206), ("HEAD", f"{bucket}/blob", 200)]


def test_the_server_ends_when_stopped(tmp_path):
    """Closing its input ends it on its own (exit status 0, not killed), and it is gone when
    stop returns."""
    server = S3Server(tmp_path).start()
    pid = server.pid
    assert pid is not None
    os.kill(pid, 0)  # alive
    assert server.stop() == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
