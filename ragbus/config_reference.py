"""Generate docs/configuration.md from the settings classes: every setting, its default and its variable.

`python -m ragbus.config_reference > docs/configuration.md`; a unit test keeps the committed page in step.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings

from ragbus.settings import (
    ApiSecuritySettings,
    ApiSettings,
    ChunkingSettings,
    EmbeddingSettings,
    EvalSettings,
    ExtractSettings,
    KafkaSettings,
    LLMSettings,
    MilvusSettings,
    ObjectSettings,
    RedisSettings,
    SourceSettings,
    StackSettings,
    WorkerSettings,
)

GROUPS: list[tuple[str, type[BaseSettings]]] = [
    ("Kafka", KafkaSettings),
    ("Milvus", MilvusSettings),
    ("Redis", RedisSettings),
    ("Embedding model", EmbeddingSettings),
    ("Chunking", ChunkingSettings),
    ("Object storage (originals of documents)", ObjectSettings),
    ("Extractor", ExtractSettings),
    ("Workers", WorkerSettings),
    ("LLM", LLMSettings),
    ("Query API", ApiSettings),
    ("Query API security (keys, tokens, rate limits)", ApiSecuritySettings),
    ("Change sources (`ragbus watch`, `ragbus source`)", SourceSettings),
    ("Embedded stack (`ragbus up`)", StackSettings),
    ("Scheduled evaluation", EvalSettings),
]

INTRO = """# Configuration

All settings come from environment variables with a `RAGBUS_` prefix, grouped by concern. A bad value stops the
process at start-up with a message naming the variable. Secrets are `SecretStr`: they never appear in logs.
Setting `RAGBUS_KAFKA_BOOTSTRAP`, `RAGBUS_MILVUS_URI` or a reachable `RAGBUS_REDIS_URL` makes `ragbus up` use
that server instead of starting its own.

This page is generated from the settings classes (`python -m ragbus.config_reference`).
"""


def _default(value: object) -> str:
    if value is None:
        return "unset"
    secret = getattr(value, "get_secret_value", None)
    shown = secret() if callable(secret) else value
    return f"`{shown}`"


def render() -> str:
    """The whole page."""
    lines = [INTRO]
    for title, group in GROUPS:
        prefix = str(group.model_config.get("env_prefix", ""))
        lines += [f"## {title}", "", "| variable | default | meaning |", "|---|---|---|"]
        for name, field in group.model_fields.items():
            description = (field.description or "").replace("|", "\\|")
            variable = field.validation_alias if isinstance(field.validation_alias, str) else prefix + name.upper()
            lines.append(f"| `{variable}` | {_default(field.default)} | {description} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
