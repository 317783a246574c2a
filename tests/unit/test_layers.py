"""Imports point down the layers only: contracts -> core -> services -> entry points (docs/architecture.md).

Every module under schemas/, ragbus/, producers/, workers/ and query_api/ is parsed (not imported), and every
import is checked: module-level and function-level `import`/`from ... import`, relative imports, and
`importlib.import_module` / `__import__` with a literal (or f-string with a literal head) module name.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "ragbus", "producers", "workers", "query_api")
SERVICES = ("producers", "workers", "query_api")
ENTRY = ("ragbus.cli", "ragbus.stack", "ragbus.__main__")
CONTRACTS, CORE, SERVICE, ENTRY_POINT = 0, 1, 2, 3
LAYER_NAMES = {CONTRACTS: "contracts", CORE: "core", SERVICE: "services", ENTRY_POINT: "entry points"}


@dataclass(frozen=True)
class Unit:
    """Where a module sits: its layer, and (for services) which service it belongs to."""

    layer: int
    name: str


def unit_of(module: str) -> Unit | None:
    """The layer of one of our modules; None for the standard library and third-party packages."""
    top = module.split(".", maxsplit=1)[0]
    if top == "schemas":
        return Unit(CONTRACTS, "schemas")
    if any(module == entry or module.startswith(entry + ".") for entry in ENTRY):
        return Unit(ENTRY_POINT, "entry")
    if top == "ragbus":
        return Unit(CORE, "ragbus")
    if top in SERVICES:
        return Unit(SERVICE, top)
    if top in ("tests", "bench"):
        return Unit(ENTRY_POINT, top)  # above everything: nothing in the packages may import them
    return None


def allowed(source: Unit, target: Unit) -> bool:
    """Down a layer always; within a layer only inside one unit (services never import each other)."""
    if target.layer < source.layer:
        return True
    return target.layer == source.layer and (source.layer == ENTRY_POINT or target.name == source.name)


def module_name(path: Path, root: Path) -> str:
    """Dotted name of a source file under `root` (a package's __init__ is the package)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _literal_module(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        head = node.values[0]
        if isinstance(head, ast.Constant) and isinstance(head.value, str):
            # f"workers.{stage}.app": the literal head names the package at least.
            return head.value.rsplit(".", 1)[0] if "." in head.value else head.value
    return None


def _is_dynamic_import(call: ast.Call) -> bool:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return name in ("import_module", "__import__") and bool(call.args)


def imported_modules(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every import in the file, wherever it appears."""
    this = module_name(path, root)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                # `from ragbus import cli` imports the module ragbus.cli, not just a name of ragbus.
                candidate = f"{base}.{alias.name}"
                is_module = (root / Path(*candidate.split("."))).is_dir() or (
                    root / Path(*candidate.split("."))
                ).with_suffix(".py").is_file()
                found.append((node.lineno, candidate if is_module else base))
        elif isinstance(node, ast.Call) and _is_dynamic_import(node):
            target = _literal_module(node.args[0])
            if target:
                found.append((node.lineno, target))
    return list(dict.fromkeys(found))  # `from x import a, b` names x once


def layer_violations(root: Path, packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """Every import under `root`'s packages that points up a layer or sideways, as `file:line: ...`."""
    problems: list[str] = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            source = unit_of(module_name(path, root))
            if source is None:
                continue
            for line, target_module in imported_modules(path, root):
                target = unit_of(target_module)
                if target is not None and not allowed(source, target):
                    problems.append(
                        f"{path.relative_to(root)}:{line} imports {target_module} "
                        f"({LAYER_NAMES[source.layer]} {source.name} -> {LAYER_NAMES[target.layer]} {target.name})"
                    )
    return problems


def test_imports_point_down_the_layers() -> None:
    # The real tree is read, dynamic imports included: the CLI loads the workers through import_module.
    assert "workers" in {m.split(".")[0] for _, m in imported_modules(ROOT / "ragbus" / "cli" / "app.py", ROOT)}
    problems = layer_violations(ROOT)
    assert not problems, "imports against the layers (see docs/architecture.md):\n" + "\n".join(problems)


def test_the_checker_sees_every_kind_of_import_against_the_layers(tmp_path: Path) -> None:
    files = {
        "schemas/__init__.py": "",
        "schemas/codec.py": "from ragbus.errors import RagbusError, TransientError\nfrom schemas import fields\n",
        "schemas/fields.py": "import orjson\n",
        "ragbus/__init__.py": "",
        "ragbus/errors.py": "from schemas.fields import X\n",
        "ragbus/cli/__init__.py": "from ragbus.errors import RagbusError\nimport workers.app\n",
        "ragbus/store.py": "def late():\n    from producers.sources import read\n",
        "ragbus/loader.py": "import importlib\n\nimportlib.import_module('query_api.app')\n",
        "ragbus/relative.py": "from . import cli\n",
        "workers/__init__.py": "",
        "workers/app.py": "from query_api import app\nfrom ragbus.errors import RagbusError\nfrom .x import y\n",
        "workers/x.py": "from importlib import import_module\nimport_module(f'ragbus.cli.{name}')\n",
        "query_api/__init__.py": "",
        "query_api/app.py": "import tests.fake_llm\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)

    problems = layer_violations(tmp_path)

    assert problems == [
        "schemas/codec.py:1 imports ragbus.errors (contracts schemas -> core ragbus)",
        "ragbus/loader.py:3 imports query_api.app (core ragbus -> services query_api)",
        "ragbus/relative.py:1 imports ragbus.cli (core ragbus -> entry points entry)",
        "ragbus/store.py:2 imports producers.sources (core ragbus -> services producers)",
        "workers/app.py:1 imports query_api.app (services workers -> services query_api)",
        "workers/x.py:2 imports ragbus.cli (services workers -> entry points entry)",
        "query_api/app.py:1 imports tests.fake_llm (services query_api -> entry points tests)",
    ]
