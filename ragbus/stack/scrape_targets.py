"""The embedded stack's Prometheus targets, as a file_sd file that infra/prometheus/prometheus-embedded.yml reads."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import orjson

FILE = "prometheus-targets.json"


def write_scrape_targets(home: Path, api_url: str | None, workers: dict[str, str]) -> Path:
    """One target group per process (`job` ragbus-api / ragbus-workers, `service` its name); [] when stopped."""
    groups = []
    if api_url:
        labels = {"job": "ragbus-api", "service": "api", "__metrics_path__": "/metrics/"}
        groups.append({"targets": [urlparse(api_url).netloc], "labels": labels})
    for name, url in sorted(workers.items()):
        service = name.removeprefix("worker-")
        groups.append({"targets": [urlparse(url).netloc], "labels": {"job": "ragbus-workers", "service": service}})
    path = home / FILE
    tmp = path.with_suffix(".tmp")  # Prometheus rereads the file on change: never let it see half of one
    tmp.write_bytes(orjson.dumps(groups, option=orjson.OPT_INDENT_2))
    tmp.replace(path)
    return path
