"""The package's layering, read from the source (ast, nothing imported): imports of sgan flow one way,
errors/fileio/device... < nn < checkpoint < formats < data / metrics / play / train < cli, with no
import cycle between modules; inside a function body sgan is imported only in cli/ (which loads each
command's library lazily) and in the few places listed below, each with its reason."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "sgan"

# top-level part of sgan -> rank; a module imports only modules of its own part or of a lower rank
# (the parts of one rank may import each other, as long as no module cycle results).
RANKS = {
    "sgan": 0, "errors": 0, "fileio": 0, "cpu_profiles": 0, "device": 0, "distributed": 0, "viz": 0,
    "checkpoint_checks": 0,
    "nn": 1,
    "latent": 2, "checkpoint": 2,
    "formats": 3,
    "data": 4, "metrics": 4, "play": 4, "train": 4,
    "cli": 5, "__main__": 6,
}
# (importing module, imported module) pairs allowed to break the order, with the reason.
ALLOWED_EDGES = {
    ("sgan", "sgan.formats"): "the package root's sgan.load_generator, imported on first use",
}
# modules outside cli/ that import sgan inside a function body, with the reason.
ALLOWED_FUNCTION_IMPORTS = {
    "sgan": "`import sgan` stays light: load_generator is imported on first use (module __getattr__)",
    "sgan.nn.factory": "only the architecture a ModelConfig names is imported (stylegan1/2/3)",
    "sgan.formats.registry": "a foreign format's converter is imported once its file is detected",
    "sgan.formats.common": "the StyleGAN3 synthesis plan only for StyleGAN3 widths (nn.stylegan3 is large)",
    "sgan.formats.stylegan3": "the StyleGAN3 filter design only when a StyleGAN3 file is converted",
    "sgan.metrics.api": "each metric's detector and module are imported when that metric runs",
    "sgan.play.project_loss": "LPIPS / VGG weights only when projection uses the perceptual loss",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in ROOT.rglob("*.py")}


def _resolve(name: str) -> str:
    """The module of a dotted name (`sgan.train.config.TrainConfig` -> `sgan.train.config`)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _imports(module: str) -> list[tuple[str, bool, int]]:
    """(imported sgan module, inside a function body, line) of `module`, without `if TYPE_CHECKING:` blocks."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found: list[tuple[str, bool, int]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue   # annotations only: never imported at run time
            if isinstance(child, ast.ImportFrom) and child.level == 0 and (child.module or "").split(".")[0] == "sgan":
                for alias in child.names:
                    found.append((_resolve(f"{child.module}.{alias.name}"), in_function, child.lineno))
            elif isinstance(child, ast.Import):
                found.extend([(_resolve(a.name), in_function, child.lineno) for a in child.names
                              if a.name.split(".")[0] == "sgan"])
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return found


GRAPH = {m: _imports(m) for m in MODULES}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "sgan"


def test_every_part_has_a_rank():
    assert {_part(m) for m in MODULES} <= set(RANKS), sorted({_part(m) for m in MODULES} - set(RANKS))


def test_no_sgan_import_inside_a_function_outside_cli():
    found = sorted({f"{m}:{line}" for m, imps in GRAPH.items() for _, in_fn, line in imps
                    if in_fn and _part(m) != "cli" and m not in ALLOWED_FUNCTION_IMPORTS})
    assert not found, f"function-level imports of sgan (move them to the top, or list them with a reason): {found}"
    stale = sorted(m for m in ALLOWED_FUNCTION_IMPORTS if not any(fn for _, fn, _ in GRAPH.get(m, [])))
    assert not stale, f"listed but without function-level imports any more (drop them from the list): {stale}"


def test_imports_flow_down_the_layers():
    wrong = []
    for m, imps in GRAPH.items():
        for target, _, line in imps:
            a, b = _part(m), _part(target)
            if RANKS[b] > RANKS[a] and (m, target) not in ALLOWED_EDGES:
                wrong.append(f"{m}:{line} imports {target} ({a} is below {b})")
    assert not wrong, wrong
    nn_imports = sorted({t for m, imps in GRAPH.items() if _part(m) == "nn" for t, _, _ in imps if _part(t) != "nn"})
    assert not nn_imports, f"nn imports nothing else of sgan: {nn_imports}"


def test_no_import_cycle_between_modules():
    edges = defaultdict(set)
    for m, imps in GRAPH.items():
        for target, _, _ in imps:
            if target != m and target != "sgan" and (m, target) not in ALLOWED_EDGES:
                edges[m].add(target)
    cycles, index, low, stack, on_stack = [], {}, {}, [], set()

    def strongly_connected(v: str) -> None:   # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                strongly_connected(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(MODULES):
        if v not in index:
            strongly_connected(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_checker_sees_function_level_imports_and_skips_type_checking_blocks():
    imps = GRAPH["sgan.train.hooks"]   # imports Trainer under TYPE_CHECKING only
    assert all(t != "sgan.train.loop" for t, _, _ in imps)
    assert any(fn for _, fn, _ in GRAPH["sgan.nn.factory"])
