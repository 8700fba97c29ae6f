"""The house's rules, read from the source: every import (under TYPE_CHECKING and inside functions
too) runs one way between the layers, nothing imports in a cycle, and functions stay small.

Layers, bottom to top (a module may import its own layer and those below, with the exceptions
named in FORBIDDEN):
  errors < model < system < plan < engines < launcher, ui < doctor < commands < cli, __main__
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "podkernel"
# Programs that run inside a container or on another host: files, not podkernel modules.
ELSEWHERE = {"plan/wrappers/warm_python.py", "doctor/listener.py"}
LAYERS = {
    "podkernel": 0,
    "podkernel.errors": 0,
    "podkernel.model": 1,
    "podkernel.system": 2,
    "podkernel.plan": 3,
    "podkernel.engines": 4,
    "podkernel.launcher": 5,
    "podkernel.ui": 5,
    "podkernel.doctor": 6,
    "podkernel.commands": 7,
    "podkernel.cli": 8,
    "podkernel.__main__": 8,
}
ENTRY_POINTS = {"podkernel.cli", "podkernel.__main__"}
# What the entry points may load lazily, inside a function: the command modules.
LAZY_COMMANDS = ("podkernel.commands.", "podkernel.launcher.internal", "podkernel.launcher.start", "podkernel.cli")
MAX_FUNCTION_LINES = 50
MAX_PARAMETERS = 8


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, tuple[Path, ast.Module]]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if str(path.relative_to(PACKAGE)) not in ELSEWHERE:
            found[module_name(path)] = (path, ast.parse(path.read_text(), str(path)))
    return found


def layer(module: str) -> int:
    while module not in LAYERS:
        module = module.rpartition(".")[0]
    return LAYERS[module]


def resolve(module: str, is_package: bool, node: ast.ImportFrom, modules: set[str]) -> list[str]:
    """The podkernel modules an ``import from`` names: each name that is a module itself, else
    the module it comes from (a package's __init__ only where a name comes from it)."""
    if node.level:
        base = module.split(".")
        base = base[: len(base) - node.level + (1 if is_package else 0)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not target.startswith("podkernel"):
        return []
    return [f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target for alias in node.names]


class Import:
    def __init__(self, source: str, target: str, line: int, in_function: bool):
        self.source, self.target, self.line, self.in_function = source, target, line, in_function

    def __repr__(self) -> str:
        where = "inside a function" if self.in_function else "at module level"
        return f"{self.source}:{self.line} imports {self.target} {where}"


def imports() -> list[Import]:
    """Every import of a podkernel module, wherever it stands."""
    modules = sources()
    found = []
    for module, (path, tree) in modules.items():
        functions = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
        nested = {id(sub) for function in functions for sub in ast.walk(function)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                targets = resolve(module, path.name == "__init__.py", node, set(modules))
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names if alias.name.startswith("podkernel")]
            else:
                continue
            for target in targets:
                if target in modules and target != module:
                    found.append(Import(module, target, node.lineno, id(node) in nested))
        found += registry_arrows(module, tree, set(modules))
    return found


def registry_arrows(module: str, tree: ast.Module, modules: set[str]) -> list[Import]:
    """A registry's lines (``"podkernel.engines.podman:PodmanEngine"``) name modules it loads: arrows too."""
    return [
        Import(module, node.value.partition(":")[0], node.lineno, False)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.partition(":")[0] in modules
        and ":" in node.value
    ]


def forbidden(arrow: Import) -> str:
    """Why an import breaks the house's rules; "" when it does not."""
    source, target = arrow.source, arrow.target
    if arrow.in_function:
        lazy_command = source in ENTRY_POINTS and target.startswith(LAZY_COMMANDS)
        return "" if lazy_command else "a podkernel import inside a function"
    if layer(target) > layer(source):
        return "an arrow that runs upwards"
    if source.startswith("podkernel.model") and not target.startswith(("podkernel.model", "podkernel.errors")):
        return "a value importing more than values and the error type"
    if source.startswith("podkernel.plan") and target.startswith("podkernel.system"):
        return "the pure plan using the operating system"
    if source.startswith("podkernel.ui") and layer(target) > layer("podkernel.model"):
        return "the user interface reaching past the values"
    if source.startswith("podkernel.launcher") and target.startswith("podkernel.ui"):
        return "the launcher using the user interface"
    commands = "podkernel.commands."
    if source.startswith(commands) and target.startswith(commands) and target != "podkernel.commands.common":
        return "a command importing another command"
    return ""


def test_no_import_breaks_the_layers():
    broken = [f"{arrow}: {reason}" for arrow in imports() if (reason := forbidden(arrow))]
    assert not broken, "\n".join(broken)


def test_there_is_no_import_cycle():
    graph: dict[str, set[str]] = {}
    for arrow in imports():
        graph.setdefault(arrow.source, set()).add(arrow.target)
    cycles = [cycle for cycle in strongly_connected(graph) if len(cycle) > 1]
    assert not cycles, cycles


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for successor in graph.get(node, ()):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            components.append(component)

    for node in list(graph):
        if node not in index:
            visit(node)
    return components


def functions() -> list[tuple[str, ast.FunctionDef]]:
    return [
        (f"{module}.{node.name}", node)
        for module, (_, tree) in sources().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


def test_functions_are_small():
    lines = {name: node.end_lineno - node.lineno + 1 for name, node in functions()}
    long = [f"{name}: {count} lines" for name, count in lines.items() if count > MAX_FUNCTION_LINES]
    assert not long, long


def test_functions_take_few_parameters():
    many = []
    for name, node in functions():
        arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
        count = len([argument for argument in arguments if argument.arg not in ("self", "cls")])
        if count > MAX_PARAMETERS:
            many.append(f"{name}: {count}")
    assert not many, many


@pytest.mark.parametrize("layer_name", ["launcher", "commands", "doctor", "ui"])
def test_no_module_outside_the_engines_asks_which_engine_it_has(layer_name):
    """Everything that differs between engines is answered by the engine object."""
    offending = []
    for path in (PACKAGE / layer_name).rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if any(word in line for word in ("engine.remote", "engine.link", "isinstance(engine", "engine.name ==")):
                offending.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert not offending, offending


def test_the_checks_themselves_see_what_they_must():
    """The graph reads imports under TYPE_CHECKING and inside functions, and resolves relative ones."""
    found = {(arrow.source, arrow.target, arrow.in_function) for arrow in imports()}
    assert ("podkernel.__main__", "podkernel.cli", True) in found
    assert ("podkernel.engines.podman", "podkernel.engines.cli_engine", False) in found
    assert ("podkernel.launcher.start", "podkernel.model.launch", False) in found
    assert ("podkernel.engines", "podkernel.engines.remote", False) in found  # the registry's lines
    assert forbidden(Import("podkernel.model.settings", "podkernel.engines", 1, False))
    assert forbidden(Import("podkernel.engines.base", "podkernel.launcher.relay", 1, False))
    assert forbidden(Import("podkernel.launcher.start", "podkernel.commands.show", 1, False))
    assert forbidden(Import("podkernel.commands.show", "podkernel.commands.install", 1, False))
    assert forbidden(Import("podkernel.launcher.warm", "podkernel.system.host", 1, True))
    assert not forbidden(Import("podkernel.cli", "podkernel.commands.show", 1, True))
    assert strongly_connected({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["b", "a"], ["c"]]


def test_every_engine_keeps_the_interfaces_signatures():
    """Each engine answers the interface's questions in the interface's terms: same parameters,
    same return type, wherever it overrides a member."""
    import inspect

    from podkernel.engines import ENGINES, REMOTE_ENGINE_CLASS, engine_class
    from podkernel.engines.base import ContainerEngine
    from podkernel.engines.cli_engine import CliEngine

    differing = []
    for engine in (CliEngine, *map(engine_class, [*ENGINES.values(), REMOTE_ENGINE_CLASS])):
        for name, member in vars(ContainerEngine).items():
            if callable(member) and not name.startswith("_") and name in vars(engine):
                if inspect.signature(vars(engine)[name]) != inspect.signature(member):
                    differing.append(f"{engine.__name__}.{name}{inspect.signature(vars(engine)[name])}")
    assert not differing, differing
