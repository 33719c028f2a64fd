"""The layers of docs/architecture.md hold: walk the import graph of the source tree (ast).

Bottom up: ``devices`` depends on nothing of ours; the ``bci`` core (acquisition, datasets,
decoders, evaluation, online, sources, recording and the shared labels, errors, _check,
_logging) never imports ``calibration`` or the application (``bci.app``, ``bci.cli``);
``calibration`` builds on the core and never imports the application. First-party imports
sit at module top, where a reader sees what a module depends on, except the few listed in
:data:`DEFERRED`, each with its reason. Test suites kept inside a package
(``devices/firmware/tests``) are not part of its layer and are not walked.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("bci", "calibration", "devices")
APPLICATION = ("bci.app", "bci.cli")
CORE = tuple(f"bci.{m}" for m in ("acquisition", "datasets", "decoders", "evaluation",
                                    "online", "sources", "recording", "labels", "errors",
                                    "_check", "_logging", "units"))

#: (importing module, imported module) -> why the import waits until it is needed. Empty:
#: the one heavy optional dependency, pygame (the "stimulus" extra), is third-party and
#: imported by calibration.stimulus when a window opens.
DEFERRED: dict[tuple[str, str], str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, node: ast.ImportFrom | ast.Import, is_pkg: bool) -> list[str]:
    """Absolute first-party names an import statement brings in."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            pkg = module.split(".") if is_pkg else module.split(".")[:-1]
            pkg = pkg[: len(pkg) - (node.level - 1)]
            base = ".".join([*pkg, base] if base else pkg)
        # "from bci.decoders import cca" imports the submodule bci.decoders.cca
        names = [f"{base}.{a.name}" if _is_module(f"{base}.{a.name}") else base
                 for a in node.names]
    return [n for n in names if n.split(".")[0] in PACKAGES]


def _is_module(name: str) -> bool:
    p = REPO.joinpath(*name.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def _is_test(path: Path) -> bool:
    """A test suite kept beside the code it tests (``devices/firmware/tests``): not a layer.

    Like ``tests/``, such a suite drives the whole stack (the firmware's host-side tests run
    the LED stimulus of ``bci.app``), so it may import any layer.
    """
    return "tests" in path.relative_to(REPO).parts[:-1]


def _imports() -> list[tuple[str, str, int, bool]]:
    """Every first-party import: (importer, imported, line, at module top)."""
    out = []
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):  # nothing when absent
            if _is_test(path):
                continue
            module = _module_name(path)
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            top = set()
            for node in tree.body:
                stack = [node]
                while stack:  # module level, including under if/try (TYPE_CHECKING, guards)
                    n = stack.pop()
                    if isinstance(n, (ast.Import, ast.ImportFrom)):
                        top.add(id(n))
                    elif isinstance(n, (ast.If, ast.Try)):
                        stack += n.body + n.orelse + getattr(n, "finalbody", []) + [
                            s for h in getattr(n, "handlers", []) for s in h.body]
            for node in ast.walk(tree):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    for name in _resolve(module, node, path.name == "__init__.py"):
                        out.append((module, name, node.lineno, id(node) in top))
    return out


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_import_graph_is_read():
    imports = _imports()
    assert len(imports) > 200
    assert ("bci.app.closed_loop", "bci.app.config") in {(a, b) for a, b, _, _ in imports}


def test_devices_imports_nothing_of_ours():
    bad = [f"{a}:{line} imports {b}" for a, b, line, _ in _imports()
           if _within(a, ("devices",)) and not _within(b, ("devices",))]
    assert not bad, sorted(set(bad))


def test_the_core_imports_neither_calibration_nor_the_application():
    bad = [f"{a}:{line} imports {b}" for a, b, line, _ in _imports()
           if _within(a, CORE) and _within(b, ("calibration", *APPLICATION))]
    assert not bad, bad


def test_calibration_does_not_import_the_application():
    bad = [f"{a}:{line} imports {b}" for a, b, line, _ in _imports()
           if _within(a, ("calibration",)) and _within(b, APPLICATION)]
    assert not bad, bad


def test_first_party_imports_are_at_module_top():
    deferred = {(a, b) for a, b, _, top in _imports() if not top}
    bad = sorted(f"{a} imports {b} inside a function" for a, b in deferred
                 if (a, b) not in DEFERRED)
    assert not bad, "\n".join(bad)
    stale = sorted(set(DEFERRED) - deferred)
    assert not stale, f"listed in DEFERRED but imported at top (or gone): {stale}"


def test_a_layer_violation_is_caught(tmp_path, monkeypatch):
    """The walker sees an import hidden in a function (the checks above can fail), and only
    a package's own test suite is left out."""
    fake = tmp_path / "devices"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "x.py").write_text("def f():\n    from bci.labels import freq_label\n")
    (fake / "tests").mkdir()  # a test suite beside the code: not walked
    (fake / "tests" / "test_x.py").write_text("from bci.labels import freq_label\n")
    (tmp_path / "bci").mkdir()
    (tmp_path / "bci" / "__init__.py").write_text("")
    (tmp_path / "bci" / "labels.py").write_text("")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    found = [(a, b, top) for a, b, _, top in _imports()]
    assert found == [("devices.x", "bci.labels", False)]
