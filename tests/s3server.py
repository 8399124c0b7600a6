"""A local S3-compatible server for the tests: moto's server mode on 127.0.0.1, a free port.

The tests (and DuckDB's httpfs, deltalake, pyiceberg) talk to it over HTTP like to any S3
endpoint; nothing inside the test process is patched. Its request log (one line per request,
written before the answer goes out) lets a test count what a pull read; a
:class:`CountingProxy` in front of it counts the bytes of the answers (the benchmarks' measure of
what a pull read).

Run on its own (``python -m tests.s3server``) it serves until Ctrl+C, printing its endpoint.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers import PROCESS_S

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

    The process binds a free port itself and says which on its standard output once it listens,
    so starting waits on that line (bounded by ``PROCESS_S``), never on a guess of the clock. It
    ends when its standard input closes (:meth:`stop`, or this process dying).

    Attributes:
        port: the port it listens on (127.0.0.1).
        endpoint: ``http://127.0.0.1:PORT``.
        log: the file its request log goes to.
    """

    def __init__(self, log_dir: str | os.PathLike[str] | None = None) -> None:
        self._dir = Path(log_dir or tempfile.mkdtemp(prefix="lookback-s3-"))
        self.log = self._dir / "s3server.log"
        self.port = 0
        self.endpoint = ""
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float | None = None) -> S3Server:
        timeout_s = PROCESS_S if timeout_s is None else timeout_s
        with open(self.log, "wb") as out:  # the process keeps its own copy of the handle
            self._process = subprocess.Popen(
                [sys.executable, "-m", "tests.s3server", "--serve"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=out,
                cwd=Path(__file__).resolve().parents[1],
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        assert self._process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._process.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout_s)
        line = self._process.stdout.readline() if ready else b""
        if not line.strip().isdigit():
            self.stop()
            said = "ended at start" if ready else f"did not listen within {timeout_s:g} s"
            raise RuntimeError(f"the S3 server {said}: {self.log.read_text()[-2000:]}")
        self.port = int(line)
        self.endpoint = f"http://127.0.0.1:{self.port}"
        return self

    def stop(self) -> int | None:
        """End the server: close its input and wait for it (killed if it has not ended after
        ``PROCESS_S``); its exit status, None when it was not running."""
        process, self._process = self._process, None
        if process is None:
            return None
        with contextlib.suppress(OSError):
            if process.stdin is not None:
                process.stdin.close()  # the server's signal to end
        try:
            status = process.wait(timeout=PROCESS_S)
        except subprocess.TimeoutExpired:
            process.kill()
            status = process.wait()
        if process.stdout is not None:
            process.stdout.close()
        return status

    @property
    def pid(self) -> int | None:
        """The server process's id while it runs."""
        return self._process.pid if self._process is not None else None

    def wait(self) -> int:
        """Wait until the server process ends (it serves until stopped); its exit status."""
        assert self._process is not None
        return self._process.wait()

    # -- for the tests --------------------------------------------------------------------

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
            region_name=REGION,
        )

    def bucket(self, prefix: str = "lb") -> str:
        """A new empty bucket with a unique name."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def storage_options(self) -> dict[str, str]:
        """What deltalake / object_store need to reach this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_REGION": REGION,
            "AWS_ALLOW_HTTP": "true",
            "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
        }

    def pyiceberg_properties(self) -> dict[str, str]:
        return {
            "s3.endpoint": self.endpoint,
            "s3.access-key-id": KEY_ID,
            "s3.secret-access-key": SECRET,
            "s3.region": REGION,
        }

    def source_keys(self) -> str:
        """The project-file keys of a source (or team store) in this server, the secret read
        from the environment variable LOOKBACK_TEST_S3_SECRET."""
        return (
            f'access_key_id = "{KEY_ID}"\nsecret_env = "LOOKBACK_TEST_S3_SECRET"\n'
            f'endpoint = "127.0.0.1:{self.port}"\nregion = "{REGION}"\n'
            'url_style = "path"\nuse_ssl = false\n'
        )

    def mark(self) -> int:
        """A place in the request log; :meth:`requests_since` reads what came after it."""
        return self.log.stat().st_size

    def requests_since(self, mark: int) -> list[Request]:
        with open(self.log, "rb") as handle:
            handle.seek(mark)
            text = handle.read().decode("utf-8", "replace")
        return [Request(m.group(1), m.group(2), int(m.group(3))) for m in _REQUEST.finditer(text)]


class CountingProxy:
    """A TCP relay on 127.0.0.1 in front of a server that counts the bytes of its answers: what
    the clients that connect through it read (headers included), measured outside them.

    Attributes:
        port: the port it listens on; point a client's endpoint at it instead of the server's.
        received: the bytes relayed from the server to the clients so far.
    """

    def __init__(self, upstream_port: int) -> None:
        self._upstream = ("127.0.0.1", upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.received = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="counting-proxy", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        with (
            client,
            socket.create_connection(self._upstream) as server,
            selectors.DefaultSelector() as selector,
        ):
            selector.register(client, selectors.EVENT_READ, server)
            selector.register(server, selectors.EVENT_READ, client)
            while True:
                for key, _ in selector.select():
                    source = key.fileobj
                    assert isinstance(source, socket.socket)
                    try:
                        data = source.recv(1 << 16)
                    except OSError:
                        return
                    if not data:
                        return
                    if source is server:
                        with self._lock:
                            self.received += len(data)
                    try:
                        key.data.sendall(data)
                    except OSError:
                        return

    def close(self) -> None:
        """Stop taking connections (those open end with their clients)."""
        self._listener.close()


def serve() -> None:
    """The server process: moto on a free port of 127.0.0.1, its request log on stderr; the port
    on stdout once it listens; it ends when stdin closes."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()  # returns once the socket listens
    print(server.get_host_and_port()[1], flush=True)
    sys.stdin.buffer.read()
    server.stop()


def main() -> None:
    if sys.argv[1:] == ["--serve"]:
        serve()
        return
    server = S3Server().start()
    print(server.endpoint, flush=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
