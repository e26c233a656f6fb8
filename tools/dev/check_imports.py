#!/usr/bin/env python
"""Fail if the modules of a package import each other in a circle, or if a package imports one
that it may not (:data:`MAY_IMPORT`: mmpvt_tools may import mmpvt, never the reverse).

    python tools/dev/check_imports.py [PACKAGE_DIR ...]
        (default: mmpvt, mmpvt_runtime and mmpvt_tools)

The graph is read from the source with ``ast``, so every import counts: top-level ones and those
inside functions (an import moved into a function to dodge a circle is still a circle). Nodes are
modules (``a/b.py`` -> ``a.b``, ``a/__init__.py`` -> ``a``); ``from X import name`` points at
``X.name`` when that is a module of the package, else at ``X``. Imports of other packages are
ignored. Prints each circle found as ``a -> b -> a`` and each import across packages that
:data:`MAY_IMPORT` does not allow as ``forbidden import: a -> b``, and exits 1; or prints the
module and edge counts and exits 0.
"""
import argparse
import ast
import os
import sys
from typing import Dict, List, Set, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGES = ('mmpvt', 'mmpvt_runtime', 'mmpvt_tools')
# top-level package -> the other checked packages it may import. mmpvt_runtime runs without torch
# (it imports none of ours); mmpvt, the installed library, may not import the tools' package,
# which is not installed with it. A package not listed here may import any.
MAY_IMPORT = {
    'mmpvt_runtime': set(),
    'mmpvt': {'mmpvt_runtime'},
    'mmpvt_tools': {'mmpvt', 'mmpvt_runtime'}
}


def module_names(package_dir: str) -> Dict[str, str]:
    """{dotted module name: file path} of every .py file under `package_dir`."""
    root = os.path.dirname(os.path.abspath(package_dir))
    names = {}
    for folder, _, files in os.walk(package_dir):
        for name in files:
            if name.endswith('.py'):
                path = os.path.join(folder, name)
                parts = os.path.relpath(path, root)[:-3].split(os.sep)
                if parts[-1] == '__init__':
                    parts = parts[:-1]
                names['.'.join(parts)] = path
    return names


def imports_of(module: str, path: str, known: Set[str]) -> Set[str]:
    """The modules of `known` that `module` (the file at `path`) imports, anywhere in it."""
    is_package = path.endswith('__init__.py')
    package = module if is_package else module.rpartition('.')[0]
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')
                base = base[:len(base) - node.level + 1]
                source = '.'.join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ''
            targets = [
                f'{source}.{a.name}' if f'{source}.{a.name}' in known else source
                for a in node.names
            ]
        else:
            continue
        for target in targets:
            # `import a.b.c` binds the innermost module that is ours
            while target and target not in known:
                target = target.rpartition('.')[0]
            if target and target != module:
                found.add(target)
    return found


def find_cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """One circle per strongly connected group of modules (Tarjan), each as a closed path."""
    index, low, on_stack, stack, groups = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(set(group))

    sys.setrecursionlimit(max(1000, 10 * len(graph)))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    cycles = []
    for group in groups:  # a shortest closed path through the group's first module
        start = min(group)
        paths, seen = [[start]], {start}
        while paths:
            path = paths.pop(0)
            nxt = sorted(w for w in graph[path[-1]] if w in group)
            if start in nxt:
                cycles.append(path + [start])
                break
            for w in nxt:
                if w not in seen:
                    seen.add(w)
                    paths.append(path + [w])
    return cycles


def forbidden_imports(graph: Dict[str, Set[str]]) -> List[Tuple[str, str]]:
    """(importer, imported) pairs whose top-level packages :data:`MAY_IMPORT` does not allow."""
    found = []
    for module in sorted(graph):
        package = module.split('.')[0]
        if package not in MAY_IMPORT:
            continue
        for target in sorted(graph[module]):
            other = target.split('.')[0]
            if other != package and other not in MAY_IMPORT[package]:
                found.append((module, target))
    return found


def import_graph(package_dirs: List[str]) -> Dict[str, Set[str]]:
    files = {}
    for d in package_dirs:
        files.update(module_names(d))
    known = set(files)
    return {m: imports_of(m, p, known) for m, p in files.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        'packages', nargs='*', metavar='PACKAGE',
        help=f'package directories (default: {", ".join(PACKAGES)} where '
        'present)')
    args = parser.parse_args(argv)
    dirs = args.packages or [
        os.path.join(REPO, p) for p in PACKAGES if os.path.isdir(os.path.join(REPO, p))
    ]
    missing = [d for d in dirs if not os.path.isdir(d)]
    if missing:
        parser.error(f'not a directory: {", ".join(missing)}')
    graph = import_graph(dirs)
    cycles = find_cycles(graph)
    for cycle in cycles:
        print('import circle: ' + ' -> '.join(cycle))
    forbidden = forbidden_imports(graph)
    for importer, imported in forbidden:
        print(f'forbidden import: {importer} -> {imported}')
    if cycles or forbidden:
        return 1
    print(f'no import circle among {len(graph)} modules '
          f'({sum(len(v) for v in graph.values())} imports)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
