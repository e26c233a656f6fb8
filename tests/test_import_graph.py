"""Imports run one way (tools/dev/check_imports.py): no module of mmpvt or mmpvt_runtime imports
itself through others, function-level imports included."""
import sys

from .helpers import REPO, run_tool


def test_the_packages_have_no_import_circle():
    out = run_tool(['tools/dev/check_imports.py'])
    assert out.stdout.startswith('no import circle among ')


def test_a_circle_through_a_function_level_import_is_found(tmp_path):
    pkg = tmp_path / 'pkg'
    (pkg / 'sub').mkdir(parents=True)
    (pkg / '__init__.py').write_text('from . import a\n')
    (pkg / 'a.py').write_text('from .sub.b import f\n')
    (pkg / 'sub' / '__init__.py').write_text('')
    (pkg / 'sub' / 'b.py').write_text('def f():\n    from ..a import g  # dodges the circle\n')
    (pkg / 'c.py').write_text('import pkg.a\n')  # imports into the circle, is not part of it
    out = run_tool([sys.executable, f'{REPO}/tools/dev/check_imports.py', str(pkg)], check=False)
    assert out.returncode == 1
    assert out.stdout.splitlines() == ['import circle: pkg.a -> pkg.sub.b -> pkg.a']
