"""Imports run one way (tools/dev/check_imports.py): no module of mmpvt, mmpvt_runtime or
mmpvt_tools imports itself through others, and mmpvt (the installed library) imports nothing of
mmpvt_tools (the tools' package, not installed), function-level imports included."""
import sys

from .helpers import REPO, run_command


def test_the_packages_have_no_import_circle():
    out = run_command(['tools/dev/check_imports.py'])
    assert out.stdout.startswith('no import circle among ')


def test_a_circle_through_a_function_level_import_is_found(tmp_path):
    pkg = tmp_path / 'pkg'
    (pkg / 'sub').mkdir(parents=True)
    (pkg / '__init__.py').write_text('from . import a\n')
    (pkg / 'a.py').write_text('from .sub.b import f\n')
    (pkg / 'sub' / '__init__.py').write_text('')
    (pkg / 'sub' / 'b.py').write_text('def f():\n    from ..a import g  # dodges the circle\n')
    (pkg / 'c.py').write_text('import pkg.a\n')  # imports into the circle, is not part of it
    out = run_command([sys.executable, f'{REPO}/tools/dev/check_imports.py', str(pkg)], check=False)
    assert out.returncode == 1
    assert out.stdout.splitlines() == ['import circle: pkg.a -> pkg.sub.b -> pkg.a']


def test_a_library_module_importing_the_tools_package_is_refused(tmp_path):
    for package, text in (('mmpvt', 'def f():\n    from mmpvt_tools import g\n'),
                          ('mmpvt_tools', 'from mmpvt import f\n\n\ndef g():\n    pass\n')):
        (tmp_path / package).mkdir()
        (tmp_path / package / '__init__.py').write_text(text)
    out = run_command([
        sys.executable, f'{REPO}/tools/dev/check_imports.py',
        str(tmp_path / 'mmpvt'),
        str(tmp_path / 'mmpvt_tools')
    ], check=False)
    assert out.returncode == 1
    assert out.stdout.splitlines() == [
        'import circle: mmpvt -> mmpvt_tools -> mmpvt', 'forbidden import: mmpvt -> mmpvt_tools'
    ]


def _check_imports():
    import importlib.util
    spec = importlib.util.spec_from_file_location('check_imports',
                                                  f'{REPO}/tools/dev/check_imports.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _graph():
    return _check_imports().import_graph([f'{REPO}/mmpvt'])


def test_the_library_imports_nothing_of_the_tools_package():
    graph = _check_imports().import_graph([f'{REPO}/{p}' for p in ('mmpvt', 'mmpvt_tools')])
    assert any(m.startswith('mmpvt_tools.') for m in graph), 'mmpvt_tools was not read'
    assert sorted((m, t) for m, targets in graph.items() if m.split('.')[0] == 'mmpvt'
                  for t in targets if t.split('.')[0] == 'mmpvt_tools') == []


def test_heads_and_detectors_are_imported_only_by_deploy_and_apis():
    # They import mmseg's / mmdet's models: the registry imports them by location, on demand, so
    # what `import mmpvt` loads may not import them (deploy and apis come after the models);
    # the heads build on the shared layers only.
    graph = _graph()
    on_top = ('mmpvt.models.heads', 'mmpvt.models.detectors')
    importers = sorted(m for m, targets in graph.items()
                       if not m.startswith(on_top) and any(t.startswith(on_top) for t in targets))
    assert [m for m in importers if not m.startswith(('mmpvt.deploy.', 'mmpvt.apis.'))] == []
    heads = set().union(*(t for m, t in graph.items() if m.startswith('mmpvt.models.heads')))
    assert {t
            for t in heads if not t.startswith('mmpvt.models.heads')
            } <= {'mmpvt.registry', 'mmpvt.families.common', 'mmpvt.ops'}


def test_the_families_and_ops_import_nothing_of_openmmlab():
    # mmpvt.families and mmpvt.ops (and what they import of mmpvt) need only torch and the
    # standard library: a plain PyTorch project can use them (README, "Use the backbone without
    # OpenMMLab")
    import ast
    import pathlib
    plain = [
        *sorted(pathlib.Path(REPO, 'mmpvt', 'families').glob('*.py')),
        *sorted(pathlib.Path(REPO, 'mmpvt', 'ops').glob('*.py')),
        pathlib.Path(REPO, 'mmpvt', 'torch_compat.py')
    ]
    outside = {}
    for path in plain:
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            for name in names:
                top = name.split('.')[0]
                if top not in sys.stdlib_module_names and top not in ('torch', 'numpy'):
                    outside.setdefault(path.name, []).append(name)
    assert outside == {}
