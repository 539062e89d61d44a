"""The package's layout as docs/architecture.md draws it: stages import only the
stages below them, no module imports itself back through others, imports inside
functions only where they save start-up (with a comment saying so), modules of
one job and ~400 lines, and scripts/recipes using only public names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "asr"

# a stage may import from stages of lower rank and from itself, never upwards
# (docs/architecture.md); "" is the package's own __init__ (its version)
RANKS = {
    "": 0,
    "audio": 0,
    "features": 1,
    "data": 2,
    "model": 3,
    "decode": 4,
    "stream": 5,
    "transcribe": 5,
    "explain": 5,
    "output": 6,
    "train": 6,
    "cli": 7,
    "__main__": 8,
}
MAX_LINES = 420
LAZY_WORDS = ("lazily", "start-up")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage(module: str) -> str:
    """asr.decode.lm -> decode; asr.transcribe -> transcribe; asr -> ''."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def asr_imports(tree: ast.Module, known: set[str]) -> list[tuple[ast.stmt, str]]:
    """(statement, imported asr module) for every import of the package, at any
    depth; ``from asr.x import y`` names module asr.x.y when that is one."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node, a.name) for a in node.names if a.name.startswith("asr")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("asr"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                out.append((node, sub if sub in known else node.module))
    return out


def inner_imports(tree: ast.Module) -> list[ast.stmt]:
    """Imports inside functions (or classes), not at module level."""
    top = {id(n) for n in tree.body}
    top |= {
        id(n)
        for s in tree.body
        if isinstance(s, ast.If)  # if TYPE_CHECKING: blocks
        for n in s.body
    }
    return [
        n
        for n in ast.walk(tree)
        if isinstance(n, (ast.Import, ast.ImportFrom)) and id(n) not in top
    ]


def upward_imports(module: str, tree: ast.Module, known: set[str]) -> list[str]:
    here = stage(module)
    return [
        f"{module} imports {target} (line {node.lineno})"
        for node, target in asr_imports(tree, known)
        if stage(target) != here and RANKS[stage(target)] >= RANKS[here]
    ]


def unexplained_inner_imports(module: str, tree: ast.Module, lines: list[str]):
    """Imports inside functions without a comment saying why (``lazily`` or
    ``start-up``, on the line or in the comment block just above), except the
    CLI's command groups, which load the stage they drive when the command runs."""
    bad = []
    for node in inner_imports(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        target = node.module if isinstance(node, ast.ImportFrom) else names[0]
        if (target or "").startswith("asr") and stage(module) == "cli":
            continue
        near = " ".join(lines[_block_start(lines, node.lineno - 1) : node.lineno])
        if not any(word in near for word in LAZY_WORDS):
            bad.append(
                f"{module}:{node.lineno} imports {target} lazily, no comment why"
            )
    return bad


def _block_start(lines: list[str], i: int) -> int:
    """The first line of the run of imports and comments that line ``i`` ends."""
    while i > 0 and lines[i - 1].strip().startswith(("import ", "from ", "#")):
        i -= 1
    return i


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def parse_package() -> dict[str, tuple[ast.Module, list[str]]]:
    return {
        module_name(p): (ast.parse(p.read_text()), p.read_text().splitlines())
        for p in sorted(PACKAGE.rglob("*.py"))
    }


MODULES = parse_package()
KNOWN = set(MODULES)


def test_every_module_belongs_to_a_drawn_stage():
    assert {stage(m) for m in MODULES} <= set(RANKS)


def test_stages_import_only_downwards():
    bad = [
        b for m, (tree, _) in MODULES.items() for b in upward_imports(m, tree, KNOWN)
    ]
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    graph = {
        m: {t for _, t in asr_imports(tree, KNOWN) if t in KNOWN and t != m}
        for m, (tree, _) in MODULES.items()
    }
    assert cycles(graph) == []


def test_imports_inside_functions_say_why():
    bad = [
        b
        for m, (tree, lines) in MODULES.items()
        for b in unexplained_inner_imports(m, tree, lines)
    ]
    assert not bad, "\n".join(bad)


def test_modules_have_one_job_and_stay_short():
    for m, (tree, lines) in MODULES.items():
        assert ast.get_docstring(tree), f"{m}: no docstring saying what it is"
        assert len(lines) <= MAX_LINES, f"{m}: {len(lines)} lines"


@pytest.mark.parametrize("folder", ["scripts", "recipes"])
def test_scripts_and_recipes_use_public_names(folder):
    bad = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "asr"
            ):
                bad += [
                    f"{path.relative_to(ROOT)}: {node.module}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_") or node.module not in KNOWN
                ]
    assert not bad, "\n".join(bad)


# the checks themselves, on small made-up packages: they must be able to fail


def test_checks_catch_an_upward_import_a_cycle_and_a_silent_lazy_import():
    tree = ast.parse("from asr.cli.app import main\n")
    assert upward_imports("asr.audio.files", tree, {"asr.cli.app"})
    assert not upward_imports(
        "asr.cli.app", ast.parse("import asr.audio.files\n"), set()
    )
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    src = "def f():\n    import librosa\n\ndef g():\n    from asr.data.text import x\n"
    bad = unexplained_inner_imports("asr.decode.lm", ast.parse(src), src.splitlines())
    assert len(bad) == 2
    ok = "def f():\n    import librosa  # lazily: slow\n"
    assert not unexplained_inner_imports("asr.x", ast.parse(ok), ok.splitlines())
    ok = "def f():\n    # lazily, for start-up\n    import a\n    import b\n"
    assert not unexplained_inner_imports("asr.x", ast.parse(ok), ok.splitlines())
