"""docs/MODEL.md cannot go stale silently: its parameter, constant and scenario tables are compared with the code.

The system-model document is the reference a user reimplements the environment from, so every default it states
must be the one ``ScenarioConfig()`` has, every ``ScenarioConfig`` field must be documented, the constants it
names must exist with the stated values, the scenario table must equal ``SCENARIOS`` and the id table
``ENV_IDS``. The docs must also stay self-contained: no reference to files outside the repository, and every
``MODEL.md#anchor`` link in docs/ must point at a heading that exists.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import math
import operator
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vmimo_env import ENV_IDS
from vmimo_env.config import ScenarioConfig
from vmimo_env.scenario import SCENARIOS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MODEL = DOCS / "MODEL.md"

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.Pow: operator.pow}


def _literal(text: str) -> Any:
    """A Python literal from a table cell, also allowing arithmetic on numbers (``1.0 - 1e-9``, ``2 ** 20``)."""

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Tuple):
            return tuple(ev(e) for e in node.elts)
        if isinstance(node, ast.List):
            return [ev(e) for e in node.elts]
        if isinstance(node, ast.Dict):
            return {ev(k): ev(v) for k, v in zip(node.keys, node.values, strict=True)}
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        raise ValueError(f"not a literal: {ast.dump(node)}")

    return ev(ast.parse(text, mode="eval").body)


def _code(cell: str) -> str:
    """The content of a cell that is one code span (`x`), else ''."""
    m = re.fullmatch(r"`([^`]*)`", cell.strip())
    return m.group(1) if m else ""


def _tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """Every markdown table as (header cells, body rows of cells)."""
    out: list[tuple[list[str], list[list[str]]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("|") and i + 1 < len(lines) and re.match(r"^\|[\s\-:|]+\|$", lines[i + 1]):
            header = [c.strip() for c in lines[i].strip().strip("|").split("|")]
            rows = []
            j = i + 2
            while j < len(lines) and lines[j].startswith("|"):
                rows.append([c.strip() for c in lines[j].strip().strip("|").split("|")])
                j += 1
            out.append((header, rows))
            i = j
        else:
            i += 1
    return out


def _table(header_start: list[str]) -> list[list[str]]:
    """Body of the one table in MODEL.md whose header begins with ``header_start``."""
    found = [rows for header, rows in _tables(MODEL.read_text(encoding="utf-8"))
             if header[:len(header_start)] == header_start]
    assert len(found) == 1, f"expected one table with header {header_start} in {MODEL}, found {len(found)}"
    for row in found[0]:
        assert len(row) >= len(header_start), f"malformed row {row}"
    return found[0]


def _equal(doc: Any, code: Any) -> bool:
    if isinstance(code, (tuple, list, np.ndarray)) and not isinstance(code, str):
        code = tuple(np.asarray(code).tolist()) if isinstance(code, np.ndarray) else tuple(code)
        doc = tuple(doc) if isinstance(doc, (tuple, list)) else doc
        if not isinstance(doc, tuple) or len(doc) != len(code):
            return False
        return all(_equal(a, b) for a, b in zip(doc, code, strict=True))
    if isinstance(code, bool) or isinstance(doc, bool):
        return type(code) is type(doc) and code == doc
    if isinstance(code, float) or isinstance(doc, float):
        return math.isclose(float(doc), float(code), rel_tol=1e-12, abs_tol=0.0)
    return doc == code


def test_parameter_table_covers_every_field_once_with_its_default() -> None:
    rows = _table(["symbol", "field", "default", "unit", "meaning", "source"])
    documented = [_code(r[1]) for r in rows]
    assert all(documented), f"every field cell must be one code span, got {[r[1] for r in rows if not _code(r[1])]}"
    fields = ScenarioConfig.field_names()
    dup = sorted({f for f in documented if documented.count(f) > 1})
    assert not dup, f"fields documented twice in MODEL.md: {dup}"
    assert sorted(set(fields) - set(documented)) == [], "ScenarioConfig fields missing from MODEL.md"
    assert sorted(set(documented) - set(fields)) == [], "MODEL.md documents fields ScenarioConfig does not have"
    cfg = ScenarioConfig()
    wrong = []
    for r in rows:
        name, doc = _code(r[1]), _literal(_code(r[2]))
        if not _equal(doc, getattr(cfg, name)):
            wrong.append(f"{name}: MODEL.md says {doc!r}, ScenarioConfig() has {getattr(cfg, name)!r}")
    assert not wrong, "\n".join(wrong)
    for r in rows:  # every row names a unit (or '–') and a source
        assert r[3] and r[5], f"row {r[1]} needs a unit and a source"


def _resolve(where: str) -> Any:
    """``pkg.mod.NAME`` -> the object; ``pkg.mod.func(arg)`` / ``pkg.mod.Cls.method(arg)`` -> arg's default."""
    m = re.fullmatch(r"([\w.]+?)(?:\((\w+)\))?", where)
    assert m, f"cannot parse {where!r}"
    dotted, arg = m.group(1), m.group(2)
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        break
    else:
        raise AssertionError(f"no importable module in {where!r}")
    if arg is None:
        return obj
    default = inspect.signature(obj).parameters[arg].default
    assert default is not inspect.Parameter.empty, f"{where}: {arg} has no default"
    return default


def test_constants_table_matches_the_code() -> None:
    rows = _table(["symbol", "where", "value", "meaning"])
    assert rows
    wrong = []
    for r in rows:
        where, value = _code(r[1]), _literal(_code(r[2]))
        assert where, f"the 'where' cell must be one code span, got {r[1]!r}"
        actual = _resolve(where)
        if not _equal(value, actual):
            wrong.append(f"{where}: MODEL.md says {value!r}, the code has {actual!r}")
    assert not wrong, "\n".join(wrong)


def test_scenario_table_equals_scenarios() -> None:
    rows = _table(["scenario", "overrides", "what it is"])
    doc = {_code(r[0]): _literal(_code(r[1])) for r in rows}
    assert set(doc) == set(SCENARIOS), f"MODEL.md scenarios {sorted(doc)} != SCENARIOS {sorted(SCENARIOS)}"
    for name, overrides in doc.items():
        code = SCENARIOS[name]
        assert set(overrides) == set(code), f"scenario {name}: keys {sorted(overrides)} != {sorted(code)}"
        for key, val in overrides.items():
            assert _equal(val, code[key]), f"scenario {name}: {key} = {val!r} in MODEL.md, {code[key]!r} in code"
        ScenarioConfig.from_dict(overrides)  # and it is a valid configuration


def test_env_id_table_equals_registered_ids() -> None:
    rows = _table(["id", "scenario", "action view"])
    doc = {_code(r[0]): (_code(r[1]), _code(r[2])) for r in rows}
    code = {i: (kw.get("scenario", "default"), kw.get("action_view", "dict")) for i, kw in ENV_IDS.items()}
    assert doc == code


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    s = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return s.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, flags=re.M)}


def test_links_to_model_sections_resolve() -> None:
    anchors = _anchors(MODEL)
    checked = 0
    for md in sorted(DOCS.glob("*.md")):
        for m in re.finditer(r"\]\(((?:\w+/)*MODEL\.md)?#([\w\-]+)\)", md.read_text(encoding="utf-8")):
            target, anchor = m.group(1), m.group(2)
            if target is None and md != MODEL:
                continue  # a link to a section of md itself
            assert anchor in anchors, f"{md.name}: link to MODEL.md#{anchor}, no such heading"
            checked += 1
    assert checked > 10  # MODEL.md's own table of contents alone has more


# names of files that live outside the repository, spelled indirectly so that a plain-text search of the
# repository for them finds only real references
_OUTSIDE = ("design".upper() + ".md", "performance".upper() + ".md", ".." + "/shared", "shared" + "/", "/" + "work/")


@pytest.mark.parametrize("md", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_docs_reference_nothing_outside_the_repository(md: Path) -> None:
    text = md.read_text(encoding="utf-8")
    for bad in _OUTSIDE:
        assert bad not in text, f"{md.name} mentions {bad!r}: the docs must be self-contained"


def _repo_text_files() -> list[Path]:
    root = DOCS.parent
    out = [root / "README.md", root / "pyproject.toml", root / "Makefile"]
    for folder in ("vmimo_env", "agents", "semantic_models", "benchmarks", "scripts", "examples", "tests"):
        out += [p for p in (root / folder).rglob("*") if p.suffix in {".py", ".md", ".yml", ".yaml"}]
    out.append(root / "train_agent.py")
    return sorted(p for p in out if p.is_file())


@pytest.mark.parametrize("path", _repo_text_files(), ids=lambda p: str(p.relative_to(DOCS.parent)))
def test_code_and_readme_reference_nothing_outside_the_repository(path: Path) -> None:
    """A clone has nothing beside it: no source, script or README line may point at a file outside it."""
    text = path.read_text(encoding="utf-8")
    for bad in _OUTSIDE:
        assert bad not in text, f"{path.name} mentions {bad!r}: the repository must be self-contained"
