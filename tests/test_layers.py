"""Imports go one way, bottom to top (docs/architecture.md): checked on the source, by AST."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "gamstore"

# layer of each module path prefix (most specific first); lower number = lower layer
LAYERS: list[tuple[str, int]] = [
    ("gamstore.fingerprint", 0),
    ("gamstore._json", 1),
    ("gamstore._validate", 1),  # validators shared by records, specs and the crate importer
    ("gamstore._version", 0),
    ("gamstore._redact", 0),
    ("gamstore.records", 1),
    ("gamstore.artifact", 1),
    ("gamstore.gauge", 1),
    ("gamstore.transfer", 1),
    ("gamstore.store", 2),
    ("gamstore.warmstart", 3),
    ("gamstore.fit", 4),
    ("gamstore.loso", 5),
    ("gamstore.plotting", 4),  # plots fits and LOSO results; imports no gamstore module
    ("gamstore.views", 5),
    ("gamstore.adapters", 5),
    ("gamstore.cli", 6),
]
# allowed (importer, imported) exceptions, each with its reason: none today
ALLOWED: set[tuple[str, str]] = set()


def layer_of(module: str) -> int | None:
    for prefix, level in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return level
    return None


def modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        name = ".".join(rel.parts)
        if name.endswith(".__init__"):
            name = name[: -len(".__init__")]
        out.append((name, path))
    return out


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {m for m in found if m.startswith("gamstore")}


@pytest.mark.parametrize("name,path", modules(), ids=[m for m, _ in modules()])
def test_no_upward_import(name: str, path: Path) -> None:
    own = layer_of(name)
    if own is None or name == "gamstore":
        return
    for target in imports_of(path):
        level = layer_of(target)
        if level is None or (name, target) in ALLOWED:
            continue
        assert level <= own, f"{name} (layer {own}) imports {target} (layer {level})"


def test_fitter_reaches_the_store_only_through_the_warm_start_layer() -> None:
    for name, path in modules():
        if name.startswith("gamstore.fit"):
            bad = {t for t in imports_of(path) if t.startswith("gamstore.store")}
            assert not bad, f"{name} imports {bad}"


# the store's private modules (issue 16: "no module outside store/ imports codec, ids, layout
# or touches store.backend"): the layout, its walk and the entry bytes are the store's alone
STORE_PRIVATE = (
    "gamstore.store.codec",
    "gamstore.store.ids",
    "gamstore.store.layout",
    "gamstore.store.walk",
)


def private_store_use(path: Path) -> set[str]:
    """Store-private modules imported by ``path`` and ``.backend`` attribute uses in it."""
    found = {
        t
        for t in imports_of(path)
        if t in STORE_PRIVATE or t.startswith(tuple(p + "." for p in STORE_PRIVATE))
    }
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for n in ast.walk(tree):
        if (isinstance(n, ast.Attribute) and n.attr == "backend") or (
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Name)
            and n.func.id == "getattr"
            and any(isinstance(a, ast.Constant) and a.value == "backend" for a in n.args)
        ):
            found.add(".backend")
    return found


def test_only_the_store_uses_its_private_modules() -> None:
    users = {
        name: sorted(found)
        for name, path in modules()
        if not (name == "gamstore.store" or name.startswith("gamstore.store."))
        and (found := private_store_use(path))
    }
    assert users == {}, f"modules outside store/ using its internals: {users}"


def test_the_check_sees_private_use(tmp_path: Path) -> None:
    """The AST check above finds each kind of use (so an empty result means something)."""
    cases = {
        "from gamstore.store.layout import key_prefix\n": {
            "gamstore.store.layout",
            "gamstore.store.layout.key_prefix",
        },
        "import gamstore.store.codec\n": {"gamstore.store.codec"},
        "from gamstore.store import walk\n": {"gamstore.store.walk"},
        "def f(store):\n    return store.backend.list('')\n": {".backend"},
        "def f(store):\n    return getattr(store, 'backend', None)\n": {".backend"},
        "from gamstore.store import KEYSPACES, Listing\n": set(),
    }
    for i, (src, expected) in enumerate(cases.items()):
        path = tmp_path / f"m{i}.py"
        path.write_text(src, encoding="utf-8")
        assert private_store_use(path) == expected, src


# the warm-start adapters; gamcrate is an importer (it copies another cache into a store on
# purpose, like `gamstore upgrade`), not a fitter, so it writes through the public Store API
WARM_START_ADAPTERS = ("gamstore.adapters.pygam", "gamstore.adapters.statsmodels")
STORE_CALLS = frozenset({"lookup", "lookup_latest", "save", "session"})


def direct_store_calls(path: Path) -> set[str]:
    """``<x>.lookup/lookup_latest/save/session(...)`` calls on anything but the orchestrator.

    The adapters hold a ``KeyedWarmStart`` (named ``plan``); any other receiver is a store
    (or a store in disguise) reached around the warm-start layer.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for n in ast.walk(tree):
        if not (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)):
            continue
        if n.func.attr not in STORE_CALLS:
            continue
        receiver = n.func.value
        if isinstance(receiver, ast.Name) and receiver.id == "plan":
            continue
        found.add(f"{ast.unparse(receiver)}.{n.func.attr}")
    return found


def test_adapters_reach_the_store_only_through_the_warm_start_layer() -> None:
    """Issue 16 item 2: the size cap, the never-raise rule and the breaker apply to them."""
    by_name = dict(modules())
    for name in WARM_START_ADAPTERS:
        path = by_name[name]
        bad = {t for t in imports_of(path) if t.startswith("gamstore.store")}
        assert not bad, f"{name} imports {bad}"
        assert direct_store_calls(path) == set(), f"{name} calls the store directly"
        assert "gamstore.warmstart" in {t.split(".KeyedWarmStart")[0] for t in imports_of(path)}


def test_direct_store_calls_are_detected(tmp_path: Path) -> None:
    """The check above can fail: a direct call and a store import are both reported."""
    src = tmp_path / "m.py"
    src.write_text(
        "from gamstore.store import open_store\n"
        "def f(store, plan):\n"
        "    plan.save(rho=1)\n"
        "    return store.lookup('inner', 'k'), store.save('outer', 'k', None)\n",
        encoding="utf-8",
    )
    assert direct_store_calls(src) == {"store.lookup", "store.save"}
    assert "gamstore.store" in imports_of(src)
