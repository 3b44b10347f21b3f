"""docs/ARCHITECTURE.md matches the code: the modules it names exist, every vmimo_env module is named, and the
import direction it states holds (checked on the source with ``ast``, including imports inside functions).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARCH = ROOT / "docs" / "ARCHITECTURE.md"


def _section(text: str, heading: str) -> str:
    m = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    assert m, f"ARCHITECTURE.md has no '## {heading}' section"
    return m.group(1)


def _first_column(text: str) -> list[str]:
    """Code spans in the first cell of every table row (header and separator rows excluded)."""
    out = []
    for line in text.splitlines():
        m = re.match(r"^\|\s*`([^`]+)`\s*\|", line)
        if m:
            out.append(m.group(1))
    return out


def _doc() -> str:
    return ARCH.read_text(encoding="utf-8")


def _named() -> list[str]:
    text = _doc()
    return [p for p in _first_column(text) if "/" in p or p.endswith(".py")]


def _layers() -> dict[str, int]:
    """vmimo_env module name -> layer, from the rows of the '`vmimo_env/` modules' table."""
    out = {}
    for line in _section(_doc(), "`vmimo_env/` modules").splitlines():
        m = re.match(r"^\|\s*`vmimo_env/(\w+)\.py`\s*\|\s*(\d)\s*\|", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def test_every_named_module_exists() -> None:
    named = _named()
    assert len(named) > 40
    missing = [p for p in named if not (ROOT / p).exists()]
    assert not missing, f"ARCHITECTURE.md names modules that do not exist: {missing}"


def test_every_vmimo_env_module_is_named() -> None:
    named = set(_named())
    modules = sorted(f"vmimo_env/{p.name}" for p in (ROOT / "vmimo_env").glob("*.py"))
    unnamed = [m for m in modules if m not in named]
    assert not unnamed, f"vmimo_env modules missing from docs/ARCHITECTURE.md: {unnamed}"


def test_every_vmimo_env_module_has_a_layer() -> None:
    layers = _layers()
    modules = {p.stem for p in (ROOT / "vmimo_env").glob("*.py")}
    assert set(layers) == modules, f"layer column out of date: {sorted(modules ^ set(layers))}"
    assert set(layers.values()) <= {0, 1, 2, 3}


# ---------------------------------------------------------------------------- imports, from the source
def _imports(path: Path) -> list[tuple[str, bool]]:
    """(absolute module name, at module level) of every import in ``path``; ``if TYPE_CHECKING`` blocks skipped.

    Relative imports are resolved against the file's package.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for sub in child.orelse:
                    visit(ast.Module(body=[sub], type_ignores=[]), top)
                continue
            if isinstance(child, ast.Import):
                out.extend((a.name, top) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    parts = package.split(".")
                    mod = ".".join(parts[:len(parts) - (child.level - 1)] + ([child.module] if child.module else []))
                else:
                    mod = child.module or ""
                out.append((mod, top))
                if mod == "vmimo_env" or child.module is None:  # `from vmimo_env import core` names modules
                    out.extend((f"{mod}.{a.name}", top) for a in child.names)
            else:
                # module and class bodies (and if/try/with inside them) run at import; function bodies do not
                visit(child, top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, True)
    return out


def _root(mod: str) -> str:
    return mod.split(".")[0]


def _py_files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", _py_files("semantic_models"), ids=lambda p: str(p.relative_to(ROOT)))
def test_semantic_models_imports_no_env_agents_or_gym(path: Path) -> None:
    bad = sorted({m for m, _ in _imports(path)
                  if _root(m) in {"vmimo_env", "agents", "gymnasium", "gym", "stable_baselines3", "sb3_contrib"}})
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


COMPILED_HEAD = "semantic_models.head_kernel"  # the one module-level model import (vmimo_env/scoring.py)


def test_the_compiled_head_imported_at_module_level_loads_no_torch() -> None:
    """``vmimo_env.scoring`` imports the head's compiled loop eagerly; that module must stay numpy and numba."""
    import sys

    third = {_root(m) for m, _ in _imports(ROOT / "semantic_models" / "head_kernel.py")} - {"__future__"}
    assert third - sys.stdlib_module_names <= {"numpy", "numba"}, third


@pytest.mark.parametrize("path", _py_files("vmimo_env"), ids=lambda p: str(p.relative_to(ROOT)))
def test_vmimo_env_import_direction(path: Path) -> None:
    imports = _imports(path)
    rel = path.relative_to(ROOT)
    upward = sorted({m for m, _ in imports if _root(m) in {"agents", "train_agent", "benchmarks", "scripts"}})
    assert not upward, f"{rel} imports {upward}: vmimo_env must not depend on agents or entry points"
    eager = sorted({m for m, top in imports if top and _root(m) in {"torch", "semantic_models"}}
                   - ({COMPILED_HEAD} if rel.as_posix() == "vmimo_env/scoring.py" else set()))
    assert not eager, f"{rel} imports {eager} at module level: load the semantic model lazily"

    layers = _layers()
    me = path.stem
    assert me in layers, f"{rel} has no layer in docs/ARCHITECTURE.md"
    for mod, _ in imports:
        parts = mod.split(".")
        if parts[0] != "vmimo_env" or len(parts) < 2 or parts[1] not in layers:
            continue
        assert layers[parts[1]] <= layers[me], (f"{rel} (layer {layers[me]}) imports vmimo_env.{parts[1]} "
                                                f"(layer {layers[parts[1]]}): imports must point down")
    third = {_root(m) for m, _ in imports} - {"vmimo_env", "__future__"}
    if layers[me] == 0:
        allowed = {"numpy", "scipy", "numba", "llvmlite", "yaml"}  # llvmlite: numba's own IR, for an intrinsic
        import sys
        foreign = sorted(m for m in third if m not in allowed and m not in sys.stdlib_module_names)
        assert not foreign, f"{rel} is a layer-0 physics module but imports {foreign}"
    if layers[me] < 3:
        gym = sorted(m for m in third if m in {"gymnasium", "gym", "stable_baselines3", "matplotlib"})
        assert not gym, f"{rel} (layer {layers[me]}) imports {gym}: only front ends (layer 3) may"
