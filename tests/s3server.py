"""A local S3-compatible server for the tests: moto's server mode on 127.0.0.1, a free port.

The tests (and DuckDB's httpfs, deltalake, pyiceberg) talk to it over HTTP like to any S3
endpoint; nothing inside the test process is patched. Its request log (one line per request,
written before the answer goes out) lets a test count what a pull read.

Run on its own (``python -m tests.s3server``) it serves until stopped, printing its endpoint.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KEY_ID = "lookback-test-key"
SECRET = "lookback-test-secret-value"
REGION = "us-east-1"
_REQUEST = re.compile(r'"(GET|HEAD|PUT|POST|DELETE) (\S+) HTTP/[\d.]+" (\d{3})')


@dataclass(frozen=True)
class Request:
    """One request the server answered: its method, path (``/bucket/key?query``) and status."""

    method: str
    path: str
    status: int

    @property
    def key(self) -> str:
        """``bucket/key`` without the query."""
        return self.path.split("?", 1)[0].lstrip("/")


class S3Server:
    """moto's S3 server as a process of its own.

    Attributes:
        port: the port it listens on (127.0.0.1).
        endpoint: ``http://127.0.0.1:PORT``.
        log: the file its request log goes to.
    """

    def __init__(self, log_dir: str | os.PathLike[str] | None = None) -> None:
        self._dir = Path(log_dir or tempfile.mkdtemp(prefix="lookback-s3-"))
        self.log = self._dir / "s3server.log"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 120.0) -> S3Server:
        out = open(self.log, "wb")  # noqa: SIM115 -- the server's, closed with it
        self._process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        out.close()
        deadline = time.monotonic() + timeout_s
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"the S3 server ended at start: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=2):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("the S3 server did not answer in time") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    # -- for the tests --------------------------------------------------------------------

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=KEY_ID,
                            aws_secret_access_key=SECRET, region_name=REGION)

    def bucket(self, prefix: str = "lb") -> str:
        """A new empty bucket with a unique name."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def storage_options(self) -> dict[str, str]:
        """What deltalake / object_store need to reach this server."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": KEY_ID,
                "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": REGION, "AWS_ALLOW_HTTP": "true",
                "AWS_S3_ALLOW_UNSAFE_RENAME": "true"}

    def pyiceberg_properties(self) -> dict[str, str]:
        return {"s3.endpoint": self.endpoint, "s3.access-key-id": KEY_ID,
                "s3.secret-access-key": SECRET, "s3.region": REGION}

    def source_keys(self) -> str:
        """The project-file keys of a source (or team store) in this server, the secret read
        from the environment variable LOOKBACK_TEST_S3_SECRET."""
        return (f'access_key_id = "{KEY_ID}"\nsecret_env = "LOOKBACK_TEST_S3_SECRET"\n'
                f'endpoint = "127.0.0.1:{self.port}"\nregion = "{REGION}"\n'
                'url_style = "path"\nuse_ssl = false\n')

    def mark(self) -> int:
        """A place in the request log; :meth:`requests_since` reads what came after it."""
        return self.log.stat().st_size

    def requests_since(self, mark: int) -> list[Request]:
        with open(self.log, "rb") as handle:
            handle.seek(mark)
            text = handle.read().decode("utf-8", "replace")
        return [Request(m.group(1), m.group(2), int(m.group(3)))
                for m in _REQUEST.finditer(text)]


def main() -> None:
    server = S3Server().start()
    print(server.endpoint, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)
    server.stop()


if __name__ == "__main__":
    main()
