"""`ragbus up --demo` as a user runs it: real servers, separate worker and API processes, a query, a clean stop."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

from ragbus.stack.process import free_port, port_in_use
from schemas.topics import STAGES
from tests.stack_fixtures import MACHINE_REDIS, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def test_up_demo_answers_about_ragbus_and_stops_within_10s(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("kafka", "milvus", "api", "s3")}
    env = {
        **os.environ,
        "RAGBUS_STACK_HOME": str(tmp_path / "state"),
        "RAGBUS_STACK_KAFKA_PORT": str(ports["kafka"]),
        "RAGBUS_STACK_MILVUS_PORT": str(ports["milvus"]),
        "RAGBUS_STACK_S3_PORT": str(ports["s3"]),
        "RAGBUS_API_PORT": str(ports["api"]),
        "RAGBUS_REDIS_URL": MACHINE_REDIS,
        "RAGBUS_REDIS_NAMESPACE": f"up-test-{ports['api']}",
        "RAGBUS_KAFKA_TOPIC_PREFIX": f"up{ports['api']}",
    }
    env.pop("RAGBUS_KAFKA_BOOTSTRAP", None)
    env.pop("RAGBUS_MILVUS_URI", None)
    log_path = tmp_path / "up.log"
    with log_path.open("wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "ragbus", "up", "--demo"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_for(
            lambda: "ragbus is up" in log_path.read_text() or up.poll() is not None,
            timeout_s=400,
            message="ragbus up --demo to be ready",
        )
        output = log_path.read_text()
        assert up.poll() is None, output
        api = f"http://127.0.0.1:{ports['api']}"
        assert f"curl -s {api}/v1/query" in output
        demo_docs = 1 + len(list((ROOT / "docs").glob("*.md")))  # README.md and the docs/ pages
        assert f"all {demo_docs} documents searchable" in output
        response = httpx.post(f"{api}/v1/query", json={"query": "How do I run the tests?", "top_k": 3}, timeout=30)
        assert response.status_code == 200
        cited = {c["doc_id"] for c in response.json()["citations"]}
        assert cited & {"README.md", "docs/quickstart.md"}
        assert "make test" in response.json()["answer"]
        assert (tmp_path / "state" / "endpoints.json").exists()
        _assert_every_worker_serves_freshness_and_lag(output, tmp_path / "state")
        # Another terminal: `ragbus query` finds the running stack through its endpoints record.
        asked = subprocess.run(
            [sys.executable, "-m", "ragbus", "query", "How is a deleted document removed?"],
            check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert asked.returncode == 0, asked.stderr
        assert "[1]" in asked.stdout
        assert "docs/architecture.md" in asked.stdout

        # Another terminal: a reindex with smaller chunks. The stack starts the new pipeline's workers itself,
        # the alias switches once they have caught up, and pruning the old pipeline stops its workers.
        def ragbus(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "ragbus", *args],
                check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400,
            )  # fmt: skip

        reindexed = ragbus("reindex", "--chunk-tokens", "64", "--overlap", "8", "--timeout", "300")
        assert reindexed.returncode == 0, reindexed.stdout + reindexed.stderr
        assert "switched: alias ragbus_chunks -> ragbus_chunks_v2" in reindexed.stdout
        assert "starting worker indexer@ragbus_chunks_v2" in log_path.read_text()
        response = httpx.post(f"{api}/v1/query", json={"query": "How do I run the tests?", "top_k": 3}, timeout=30)
        assert response.status_code == 200 and response.json()["citations"]
        pruned = ragbus("reindex", "--prune")
        assert pruned.returncode == 0, pruned.stderr
        assert "pruned 1 collection(s): ragbus_chunks_v1" in pruned.stdout
        wait_for(lambda: "pipeline ragbus_chunks_v1 retired" in log_path.read_text(), timeout_s=30, message="stop")
        assert up.poll() is None
        response = httpx.post(f"{api}/v1/query", json={"query": "How do I run the tests?", "top_k": 3}, timeout=30)
        assert response.status_code == 200 and response.json()["citations"]
    finally:
        started = time.monotonic()
        up.send_signal(signal.SIGTERM)
        code = up.wait(timeout=30)
        took = time.monotonic() - started
    assert took < 10, f"stop took {took:.1f}s"
    assert code == 0, log_path.read_text()[-2000:]
    for name, port in ports.items():
        assert not port_in_use(port), f"{name} port {port} still open after stop"
    assert not (tmp_path / "state" / "endpoints.json").exists()


def _children(pid: int) -> dict[int, str]:
    """Command lines of a process's children, by pid."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found[int(proc.name)] = (proc / "cmdline").read_text().replace("\0", " ")
        except (OSError, IndexError, ValueError):
            continue  # it exited meanwhile
    return found


def test_a_killed_worker_is_restarted_while_the_api_keeps_answering(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("kafka", "milvus", "api")}
    env = {
        **os.environ,
        "RAGBUS_STACK_HOME": str(tmp_path / "state"),
        "RAGBUS_STACK_KAFKA_PORT": str(ports["kafka"]),
        "RAGBUS_STACK_KAFKA_STORAGE": "memory",
        "RAGBUS_STACK_MILVUS_PORT": str(ports["milvus"]),
        "RAGBUS_API_PORT": str(ports["api"]),
        "RAGBUS_REDIS_URL": MACHINE_REDIS,
        "RAGBUS_REDIS_NAMESPACE": f"up-kill-{ports['api']}",
        "RAGBUS_KAFKA_TOPIC_PREFIX": f"upkill{ports['api']}",
    }
    env.pop("RAGBUS_KAFKA_BOOTSTRAP", None)
    env.pop("RAGBUS_MILVUS_URI", None)
    log_path = tmp_path / "up.log"
    with log_path.open("wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "ragbus", "up"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    api = f"http://127.0.0.1:{ports['api']}"

    def ask(question: str) -> httpx.Response:
        return httpx.post(f"{api}/v1/query", json={"query": question, "top_k": 3}, timeout=30)

    try:
        wait_for(lambda: "ragbus is up" in log_path.read_text() or up.poll() is not None, timeout_s=400, message="up")
        assert up.poll() is None, log_path.read_text()
        indexer = next(pid for pid, argv in _children(up.pid).items() if argv.endswith("ragbus worker indexer "))
        os.kill(indexer, signal.SIGKILL)
        # The API answers while the indexer is down, and a document published now is indexed once it is back.
        assert ask("What does the quokka eat?").status_code == 200
        sent = httpx.post(
            f"{api}/v1/documents",
            json={"doc_id": "after-kill.md", "text": "The restarted quokka eats ferns at dawn."},
            timeout=30,
        )
        assert sent.status_code == 202, sent.text
        wait_for(lambda: "restarted worker-indexer" in log_path.read_text(), timeout_s=60, message="restart")
        output = log_path.read_text()
        assert "worker-indexer exited (code -9); restarting in 1.0s" in output
        assert up.poll() is None, output
        answers = []

        def indexed() -> bool:
            response = ask("What does the restarted quokka eat?")
            answers.append(response.status_code)
            return any(c["doc_id"] == "after-kill.md" for c in response.json().get("citations", []))

        wait_for(indexed, timeout_s=180, interval_s=1, message="the document published after the kill")
        assert set(answers) == {200}, answers  # every query during the restart succeeded
        restarted = [pid for pid, argv in _children(up.pid).items() if argv.endswith("ragbus worker indexer ")]
        assert restarted and indexer not in restarted
    finally:
        up.send_signal(signal.SIGTERM)
        code = up.wait(timeout=30)
    assert code == 0, log_path.read_text()[-2000:]


def _assert_every_worker_serves_freshness_and_lag(output: str, home: Path) -> None:
    """Each worker's /metrics (printed by `ragbus up`, listed for Prometheus) has the lag gauge and freshness."""
    printed = dict(re.findall(r"^\s+worker-(\w+)\s+(http://127\.0\.0\.1:\d+/metrics)$", output, flags=re.MULTILINE))
    assert set(printed) == set(STAGES), output
    groups = orjson.loads((home / "prometheus-targets.json").read_bytes())
    listed = {g["labels"]["service"]: g["targets"][0] for g in groups if g["labels"]["job"] == "ragbus-workers"}
    assert {stage: f"http://{target}/metrics" for stage, target in listed.items()} == printed

    def scrape(url: str) -> str:
        return httpx.get(url, timeout=10).text

    for stage, url in printed.items():
        wait_for(
            lambda url=url: re.search(r"^ragbus_consumer_lag_messages\{", scrape(url), flags=re.MULTILINE),
            timeout_s=60,
            message=f"{stage} lag gauge",
        )
        assert re.search(r"^ragbus_freshness_seconds_count ", scrape(url), flags=re.MULTILINE), stage
    indexed = re.search(r"^ragbus_freshness_seconds_count (\S+)$", scrape(printed["indexer"]), re.MULTILINE)
    assert indexed and float(indexed.group(1)) >= 1  # the demo documents were indexed by this worker


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        env = {
            **os.environ,
            "RAGBUS_STACK_HOME": str(tmp_path),
            "RAGBUS_STACK_KAFKA_PORT": str(taken),
            "RAGBUS_STACK_KAFKA_STORAGE": "memory",
            "RAGBUS_REDIS_URL": MACHINE_REDIS,
        }
        env.pop("RAGBUS_KAFKA_BOOTSTRAP", None)
        result = subprocess.run(
            [sys.executable, "-m", "ragbus", "up"],
            check=False,
            cwd=ROOT,
            env=env,
            capture_output=True,
            timeout=60,
            text=True,
        )
    assert result.returncode == 1
    assert f"port {taken}" in result.stderr
    assert "RAGBUS_STACK_KAFKA_PORT" in result.stderr


def test_s3_storage_keeps_topics_and_offsets_across_a_broker_restart(tmp_path: Path) -> None:
    """The embedded default: tansu on a local SeaweedFS S3 store, restarted, still has the log and the offsets."""
    import asyncio

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from ragbus.stack.process import stop_all
    from ragbus.stack.servers import start_seaweedfs, start_tansu

    s3_port, kafka_port = free_port(), free_port()
    bootstrap = f"127.0.0.1:{kafka_port}"
    tp = TopicPartition("durable", 0)

    async def write_and_commit() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic("durable", 1, 1)])
        await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        for i in range(5):
            await producer.send_and_wait("durable", f"record-{i}".encode(), partition=0)
        await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id="keeper", enable_auto_commit=False)
        await consumer.start()
        consumer.assign([tp])
        await consumer.commit({tp: 3})
        await consumer.stop()

    async def read_back() -> tuple[int | None, list[bytes]]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id="keeper", enable_auto_commit=False, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            committed = await consumer.committed(tp)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            records = (await consumer.getmany(tp, timeout_ms=5000)).get(tp, [])
            return committed, [r.value for r in records if r.value is not None]
        finally:
            await consumer.stop()

    weed = start_seaweedfs(tmp_path, s3_port)
    broker = start_tansu(tmp_path, kafka_port, "s3", s3_port)
    try:
        # SeaweedFS listens on exactly the ports it was given (gRPC ones included), none derived as port + 10000.
        assert weed.proc is not None
        given = {int(a.split("=", 1)[1]) for a in weed.argv if ".port" in a and not a.endswith("=0")}
        pid = weed.proc.pid
        wait_for(lambda: _listening_ports(pid) == given, timeout_s=30, message=f"weed on {given}")
        asyncio.run(write_and_commit())
        stop_all([broker], timeout_s=10)
        broker = start_tansu(tmp_path, kafka_port, "s3", s3_port)
        committed, values = asyncio.run(read_back())
        assert committed == 3
        assert values == [f"record-{i}".encode() for i in range(5)]
    finally:
        stop_all([broker, weed], timeout_s=10)


def _listening_ports(pid: int) -> set[int]:
    """TCP ports a process listens on (its socket inodes matched against /proc/net/tcp in LISTEN state)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports
