"""What the benchmarks share: their own servers on spare ports, worker processes, a SciFact ingest."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from producers.sources.files import read_documents
from ragbus.document_follower import follow_documents
from ragbus.document_publisher import DocumentPublisher, publish_documents
from ragbus.kafka_clients import consumer_lag, start_client
from ragbus.kafka_security import kafka_connection
from ragbus.milvus.store import MilvusChunkStore
from ragbus.settings import Settings, load_settings
from ragbus.stack.launcher import redis_reachable
from ragbus.stack.process import ManagedProcess, free_port, stop_all
from ragbus.stack.servers import start_milvus_lite, start_milvus_server, start_redis, start_tansu
from schemas.documents import DocumentEvent
from schemas.topics import STAGES, Lane, PipelineTopics, Topics

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "datasets" / "scifact" / "corpus.jsonl"


ENGINES = ("milvus-lite", "milvus-server")


def start_milvus(engine: str, home: Path, port: int) -> ManagedProcess:
    """`engine` (milvus-lite or milvus-server, the real 2.3 engine) on `port`, its data under `home`."""
    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r}: choose from {', '.join(ENGINES)}")
    return (start_milvus_lite if engine == "milvus-lite" else start_milvus_server)(home, port)


def save_result(result: Mapping[str, object], out: Path, shown: str) -> None:
    """Write `result`, stamped with the machine and the time, to `out` as JSON, and print its `shown` part."""
    stamped = {
        **result,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out.write_text(json.dumps(stamped, indent=1) + "\n")
    print(json.dumps(result[shown], indent=1))
    print(f"wrote {out}")


@contextmanager
def bench_stack(engine: str = "milvus-lite") -> Iterator[tuple[dict[str, str], Settings, Path]]:
    """tansu (memory), Milvus (`engine`: milvus-lite or the real 2.3 engine) and Redis with a fresh namespace.

    Yields (env, settings, home).
    """
    home = Path(tempfile.mkdtemp(prefix="ragbus-bench-"))
    servers: list[ManagedProcess] = []
    try:
        kafka_port, milvus_port = free_port(), free_port()
        servers.append(start_tansu(home, kafka_port, "memory"))
        servers.append(start_milvus(engine, home, milvus_port))
        redis_url = "redis://127.0.0.1:6379/0"
        if not redis_reachable(redis_url):
            redis_port = free_port()
            servers.append(start_redis(home, redis_port))
            redis_url = f"redis://127.0.0.1:{redis_port}/0"
        name = f"bench{uuid.uuid4().hex[:8]}"
        env = {
            "RAGBUS_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka_port}",
            "RAGBUS_KAFKA_TOPIC_PREFIX": name,
            "RAGBUS_MILVUS_URI": f"http://127.0.0.1:{milvus_port}",
            "RAGBUS_MILVUS_ALIAS": f"{name}_chunks",
            "RAGBUS_REDIS_URL": redis_url,
            "RAGBUS_REDIS_NAMESPACE": name,
            "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
        os.environ.update(env)
        yield env, load_settings(), home
    finally:
        stop_all(servers, timeout_s=20)


def start_workers(
    env: dict[str, str],
    home: Path,
    prefix: str = "",
    embedders: int = 1,
    own_env: Mapping[str, Mapping[str, str]] | None = None,
) -> list[ManagedProcess]:
    """The workers as processes (`embedders` of the embedder), returned once each consumes its partitions.

    `own_env` adds variables to one process, by its name (`embedder1` is the second embedder).
    """
    workers = []
    for stage in STAGES:
        for replica in range(embedders if stage == "embedder" else 1):
            name = f"{prefix}{stage}{replica or ''}"
            argv = [sys.executable, "-m", "ragbus", "worker", stage]
            process_env = {**env, **(own_env or {}).get(name, {})}
            workers.append(ManagedProcess(name, argv, home / f"{name}.log", process_env).start())
    try:
        for worker in workers:
            worker.wait_ready(_consuming(worker), timeout_s=180)
    except BaseException:
        stop_all(workers, timeout_s=10)
        raise
    return workers


def _consuming(worker: ManagedProcess) -> Callable[[], bool]:
    # Ready, and its consumer has joined the group and holds partitions (FastStream logs the assignment): joining
    # takes seconds on a fresh group, a one-time start-up cost that is not the ingest being measured.
    def check() -> bool:
        log = worker.log_path.read_text()
        return "ready: consuming" in log and "assigned to partitions" in log

    return check


async def drained(settings: Settings) -> bool:
    """Every stage has committed everything on its input topic.

    Read in pipeline order: a stage commits a batch only after its output is delivered, so when the chunker's lag
    is 0 every chunk is on the chunks topic before the embedder's lag is read, and so on down to the indexer.
    """
    names = PipelineTopics(Topics(settings.kafka.topic_prefix))
    for stage in STAGES:
        for topic in names.input_topics(stage):  # both lanes
            if sum((await consumer_lag(settings, names.group(stage), topic)).values()):
                return False
    return True


async def _indexer_committed(consumer: AIOKafkaConsumer, topic: str) -> int:
    """Records of `topic` the consumer's group (the indexer's) has committed, summed over partitions."""
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        await consumer._client.force_metadata_update()  # the topic may be new to this client
        partitions = consumer.partitions_for_topic(topic) or set()
    return sum([(await consumer.committed(TopicPartition(topic, p))) or 0 for p in sorted(partitions)])


async def index(
    settings: Settings, events: list[DocumentEvent], timeout_s: float = 3600, lane: Lane | None = None
) -> float:
    """Publish `events`, wait until the pipeline has drained, check every one is searchable; seconds to drained."""
    drained_s, _ = await index_timed(settings, events, timeout_s, lane)
    return drained_s


async def index_timed(
    settings: Settings, events: list[DocumentEvent], timeout_s: float = 3600, lane: Lane | None = None
) -> tuple[float, float]:
    """`index`, also returning the seconds the publish itself took: (to drained, to published).

    Each stage turns one record into one, so the pipeline is through when the indexer's group has committed as
    many more records of its input topic as were published. That is read every 0.2 s
    from one consumer that never joins the group: cheap for the broker and for the machine being measured, where
    reading every stage's lag opens clients and fetches end offsets. A record that stopped early (dead-lettered
    upstream) would hold that count back, so every stage's lag is also read every 5 s; records others publish
    meanwhile (freshness probes during a bulk) would end the wait early, so the index itself is checked at the end.
    """
    names = PipelineTopics(Topics(settings.kafka.topic_prefix))
    lane = lane or DocumentPublisher(settings).lane_for(len(events))  # a large publish travels in the bulk lane
    topic = names.input_topic("indexer", lane)
    watcher = AIOKafkaConsumer(**kafka_connection(settings), group_id=names.group("indexer"), enable_auto_commit=False)
    await start_client(settings, watcher)
    try:
        target = await _indexer_committed(watcher, topic) + len(events)
        started = time.perf_counter()
        report = await publish_documents(settings, events, lane=lane)
        published = time.perf_counter() - started
        deadline, lag_checked = time.monotonic() + timeout_s, time.monotonic()
        while await _indexer_committed(watcher, topic) < target:
            if time.monotonic() - lag_checked > 5:
                if await drained(settings):
                    break
                lag_checked = time.monotonic()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the pipeline did not drain within {timeout_s:.0f}s")
            await asyncio.sleep(0.2)
        took = time.perf_counter() - started
    finally:
        await watcher.stop()
    store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
    try:
        pending = (await follow_documents(settings, store, report.versions, timeout_s=60, poll_s=1.0)).pending
    finally:
        store.close()
    if pending:
        raise RuntimeError(f"{len(pending)} documents not indexed, e.g. {sorted(pending)[:3]}")
    return took, published


def ingest(settings: Settings, docs: int) -> tuple[float, int]:
    """Publish the first `docs` SciFact abstracts and wait until all are searchable; (seconds, documents)."""
    events = read_documents([SCIFACT])[:docs]
    return asyncio.run(index(settings, events)), len(events)


def settle(max_wait_s: float = 180, window_s: float = 5, quiet_cores: float = 0.25) -> dict[str, float]:
    """Wait until the stack's processes (not this one) use under `quiet_cores` over a `window_s` window.

    After a bulk ingest the engine keeps working for a while (the real Milvus compacts and builds indexes);
    latency measured meanwhile would charge that to the queries. Returns the seconds waited and the last share.
    """
    started = time.monotonic()
    while True:
        before = process_cpu()
        time.sleep(window_s)
        after = process_cpu()
        used = sum(v - before.get(k, 0.0) for k, v in after.items() if k != "bench") / window_s
        if used < quiet_cores or time.monotonic() - started > max_wait_s:
            return {"waited_s": round(time.monotonic() - started, 1), "cores_busy": round(used, 2)}


def cpu_reference(rounds: int = 5) -> float:
    """Median milliseconds of a fixed single-threaded pure-Python loop: how fast this shared machine was just then.

    The same code and data gave uncached p95 110 ms at one hour and 73 ms at another; a latency is only comparable
    with another one taken at a similar reference, so every latency phase records it before and after.
    """
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        total = 0
        for i in range(400_000):
            total += i * i % 7
        times.append(time.perf_counter() - began)
    return round(statistics.median(times) * 1000, 1)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def _cpu_of(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds these processes have used so far (Linux /proc)."""
    return sum(_cpu_of(fields) for pid in pids if (fields := _stat_fields(pid)))


def _command(pid: int) -> str:
    """`ragbus worker embedder` for `python -m ragbus worker embedder`, else the program's name."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except (FileNotFoundError, ProcessLookupError):
        return "?"
    if "-m" in argv:
        module = argv[argv.index("-m") + 1 :]
        return " ".join(module[:3] if module[0] == "ragbus" else module[:1])
    return Path(argv[0]).name


def process_cpu(labels: dict[int, str] | None = None) -> dict[str, float]:
    """CPU seconds so far of this process (`bench`) and every process below it, by label (else command).

    Children that exited are not counted: snapshot while the processes of interest run.
    """
    stats = {int(e.name): f for e in Path("/proc").iterdir() if e.name.isdigit() and (f := _stat_fields(int(e.name)))}
    children: dict[int, list[int]] = {}
    for pid, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(pid)
    tree, frontier = {os.getpid(): "bench"}, [os.getpid()]
    while frontier:
        parent = frontier.pop()
        for pid in children.get(parent, []):
            tree[pid] = (labels or {}).get(pid, tree[parent] if tree[parent] != "bench" else _command(pid))
            frontier.append(pid)
    usage: dict[str, float] = {}
    for pid, label in tree.items():
        if pid in stats:
            usage[label] = usage.get(label, 0.0) + _cpu_of(stats[pid])
    return usage
