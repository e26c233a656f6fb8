"""The documentation against the code: docs/tools.md's argument tables against the tools' own
argument parsers (and shell scripts), and every link and repository path in README.md and docs/.

A tool's parser is read without running the tool: the tool file is loaded by path, and its
``main`` is called with ``argparse.ArgumentParser.parse_args`` patched to hand back the parser
instead of parsing (so nothing after the parser is built runs).
"""
import argparse
import importlib.util
import inspect
import re
import sys
from pathlib import Path

import pytest

from .helpers import REPO

ROOT = Path(REPO)
TOOLS_DOC = ROOT / 'docs' / 'tools.md'
DOC_FILES = [ROOT / 'README.md', *sorted((ROOT / 'docs').glob('*.md'))]
TOOL_FILES = sorted(
    p.relative_to(ROOT).as_posix() for p in (ROOT / 'tools').rglob('*')
    if p.is_file() and p.suffix in ('.py', '.sh'))
PY_TOOLS = [t for t in TOOL_FILES if t.endswith('.py')]
SH_TOOLS = [t for t in TOOL_FILES if t.endswith('.sh')]
HELP = {'-h', '--help'}


# ---- reading the markdown -------------------------------------------------------------------
def prose_lines(path):
    """(line number, line) of a markdown file outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.lstrip().startswith('```'):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def code_block_lines(path):
    fenced = False
    for line in path.read_text().splitlines():
        if line.lstrip().startswith('```'):
            fenced = not fenced
        elif fenced:
            yield line


def table_cells(line):
    """The cells of a markdown table row (`\\|` is a literal bar, not a separator)."""
    return [c.strip() for c in re.split(r'(?<!\\)\|', line.strip().strip('|'))]


def tool_sections():
    """{tool path: [first-column cells of its argument table]} from docs/tools.md."""
    sections, current = {}, None
    for _, line in prose_lines(TOOLS_DOC):
        heading = re.match(r'(#+) ', line)
        if heading:
            name = re.fullmatch(r'#{2,4} `(tools/[^`]+)`', line.strip())
            current = name.group(1) if name else None
            if current is not None:
                assert current not in sections, f'docs/tools.md: two sections for {current}'
                sections[current] = []
            continue
        if current is not None and line.startswith('|'):
            first = table_cells(line)[0]
            if first == 'argument' or set(first) <= set('-: '):
                continue  # header and separator rows
            sections[current].append(first)
    return sections


def documented(cells):
    """Option strings, positional names (in order), environment variables and whether `...`
    (arguments passed through) is listed, from a section's first-column cells."""
    options, positionals, env, passthrough = set(), [], set(), False
    for cell in cells:
        spans = re.findall(r'`([^`]+)`', cell)
        assert spans, f'docs/tools.md: argument cell without `code`: {cell!r}'
        for span in spans:
            token = span.split()[0].strip('[]')
            if token == '...':
                passthrough = True
            elif token.startswith('-'):
                options.add(token)
            elif token.startswith('$'):
                env.add(token[1:])
            else:
                positionals.append(token)
    return options, positionals, env, passthrough


SECTIONS = tool_sections()


# ---- reading the tools ----------------------------------------------------------------------
class _Parser(Exception):

    def __init__(self, parser):
        super().__init__('parser captured')
        self.parser = parser


def tool_parser(relpath, monkeypatch):
    """The ArgumentParser that tools/<relpath> builds, captured when it is first asked to parse."""
    path = ROOT / relpath
    name = '_mmpvt_docs_' + re.sub(r'\W', '_', relpath)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setattr(sys, 'path', list(sys.path))  # some tools prepend the repository
    monkeypatch.setattr(sys, 'argv', [str(path)])
    spec.loader.exec_module(module)
    if hasattr(module, 'build_parser'):
        return module.build_parser()

    def capture(self, *args, **kwargs):
        raise _Parser(self)

    monkeypatch.setattr(argparse.ArgumentParser, 'parse_args', capture)
    monkeypatch.setattr(argparse.ArgumentParser, 'parse_known_args', capture)
    main = module.main
    try:
        main([]) if inspect.signature(main).parameters else main()
    except _Parser as captured:
        return captured.parser
    raise AssertionError(f'{relpath}: main() returned without building an argument parser')


def parser_arguments(parser):
    options, positionals = set(), []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if action.option_strings:
            options.update(action.option_strings)
        else:
            positionals.append(action.metavar or action.dest.upper())
    return options, positionals


def delegates(relpath):
    """The scripts under tools/ that a shell script runs (``"$(dirname "$0")/NAME.sh"``)."""
    text = (ROOT / relpath).read_text()
    return [f'tools/{name}' for name in re.findall(r'\$\(dirname "\$0"\)/([\w.]+\.sh)', text)]


def script_arguments(relpath):
    """Positional names (`NAME=$N`), environment variables (`${NAME:-...}`, its own and those of
    the scripts it runs) and pass-through (`${@:N}`) of a shell script."""
    text = (ROOT / relpath).read_text()
    positionals = [
        name for _, name in sorted((int(n), name)
                                   for name, n in re.findall(r'^([A-Z_]+)=\$(\d+)\s*$', text, re.M))
    ]
    env = set(re.findall(r'\$\{([A-Z_][A-Z0-9_]*):-', text))
    for delegate in delegates(relpath):
        env |= script_arguments(delegate)[1]
    return positionals, env, '"${@:' in text


# What other tools run, and developer tools: docs/tools.md has their sections, the README's
# table (what a user runs) does not need them.
HELPERS = {d
           for t in SH_TOOLS
           for d in delegates(t)} | {t
                                     for t in TOOL_FILES if t.startswith('tools/dev/')}


# ---- the tool tables ------------------------------------------------------------------------
def test_every_tool_has_a_section_in_docs_and_a_row_in_the_readme():
    assert TOOL_FILES, 'no tools found'
    assert sorted(SECTIONS) == TOOL_FILES, (
        f'docs/tools.md sections {sorted(SECTIONS)} != files under tools/ {TOOL_FILES}')
    readme = (ROOT / 'README.md').read_text()
    missing = [t for t in TOOL_FILES if t not in HELPERS and f'`{t}`' not in readme]
    assert not missing, f"README.md's tools table does not name {missing}"


@pytest.mark.parametrize('tool', PY_TOOLS)
def test_python_tool_arguments_match_docs(tool, monkeypatch):
    options, positionals = parser_arguments(tool_parser(tool, monkeypatch))
    doc_options, doc_positionals, doc_env, passthrough = documented(SECTIONS[tool])
    assert doc_options - HELP == options, (
        f'docs/tools.md {tool}: documented {sorted(doc_options)}, the parser has '
        f'{sorted(options)}')
    assert doc_positionals == positionals, (
        f'docs/tools.md {tool}: positionals {doc_positionals}, the parser has {positionals}')
    assert not doc_env and not passthrough, f'docs/tools.md {tool}: `$VAR` / `...` rows'


@pytest.mark.parametrize('tool', SH_TOOLS)
def test_shell_tool_arguments_match_docs(tool):
    positionals, env, passthrough = script_arguments(tool)
    doc_options, doc_positionals, doc_env, doc_passthrough = documented(SECTIONS[tool])
    assert not doc_options, f'docs/tools.md {tool}: the script takes no options'
    assert doc_positionals == positionals, (
        f'docs/tools.md {tool}: positionals {doc_positionals}, the script has {positionals}')
    assert doc_env == env, f'docs/tools.md {tool}: environment {sorted(doc_env)}, ' \
                           f'the script reads {sorted(env)}'
    assert doc_passthrough == passthrough, f'docs/tools.md {tool}: `...` row'


def test_check_env_help_is_help(capsys):
    spec = importlib.util.spec_from_file_location('_mmpvt_docs_check_env',
                                                  ROOT / 'tools' / 'check_env.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(SystemExit) as exit_info:
        module.main(['--help'])
    assert exit_info.value.code == 0
    assert 'usage:' in capsys.readouterr().out


# ---- links and paths ------------------------------------------------------------------------
def github_anchors(path):
    """The anchors GitHub gives the headings of a markdown file."""
    anchors, seen = set(), {}
    for _, line in prose_lines(path):
        m = re.match(r'#{1,6} (.+)', line)
        if not m:
            continue
        text = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', m.group(1).strip()).replace('`', '')
        slug = re.sub(r'[^\w\- ]', '', text.lower()).replace(' ', '-')
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f'{slug}-{n}')
    return anchors


@pytest.mark.parametrize('doc', DOC_FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(doc):
    broken = []
    for number, line in prose_lines(doc):
        for target in re.findall(r'\]\(([^)\s]+)(?:\s+"[^"]*")?\)', line):
            if re.match(r'[a-z][a-z0-9+.-]*:', target):  # http:, https:, mailto:
                continue
            file_part, _, anchor = target.partition('#')
            path = (doc.parent / file_part).resolve() if file_part else doc
            if not path.exists():
                broken.append(f'line {number}: {target} (no such file)')
            elif anchor and path.suffix == '.md' and anchor not in github_anchors(path):
                broken.append(f'line {number}: {target} (no heading #{anchor})')
    assert not broken, f'{doc.relative_to(ROOT)}: ' + '; '.join(broken)


REPO_PATH = re.compile(r'(?:configs|docs|mmpvt|mmpvt_tools|tests|tools)/[\w./{},-]*')


def expand_braces(path):
    m = re.search(r'\{([^{}]*)\}', path)
    if not m:
        return [path]
    return [
        p for alt in m.group(1).split(',')
        for p in expand_braces(path[:m.start()] + alt + path[m.end():])
    ]


@pytest.mark.parametrize('doc', DOC_FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_repository_paths_exist(doc):
    """Every `code` span that is a repository path (and every such word in a code block)
    names a file or folder of this repository."""
    candidates = [s for _, line in prose_lines(doc) for s in re.findall(r'`([^`\s]+)`', line)]
    candidates += [w.strip('\'"(),;') for line in code_block_lines(doc) for w in line.split()]
    missing = set()
    for word in candidates:
        if not REPO_PATH.fullmatch(word) or '...' in word:
            continue
        missing.update(p for p in expand_braces(word) if not (ROOT / p).exists())
    assert not missing, f'{doc.relative_to(ROOT)} names paths that do not exist: {sorted(missing)}'


# ---- the README's own-project configs -------------------------------------------------------
def readme_python_block(marker):
    """The README's ```python block that contains `marker`."""
    readme = (ROOT / 'README.md').read_text()
    return next(b.split('```')[0] for b in readme.split('```python\n')[1:] if marker in b)


def test_readme_classifier_config_builds_the_authors_pvt_v2_b2(tmp_path):
    """The mmpretrain config of "Using mmpvt from your own project", as written there: an
    ImageClassifier of PVTv2-B2 with the 25,362,856 parameters of the authors' pvt_v2_b2.pth
    (docs/classification.md's table)."""
    import torch
    from mmengine.config import Config

    from .helpers import build_model, parameter_count
    path = tmp_path / 'pvt_v2_b2_in1k.py'
    path.write_text(readme_python_block('my_project/configs/pvt_v2_b2_in1k.py'))
    cfg = Config.fromfile(str(path))
    assert cfg.default_scope == 'mmpretrain'
    with torch.device('meta'):
        model = build_model(cfg)
    assert type(model).__name__ == 'ImageClassifier'
    assert (type(model.backbone).__name__, model.backbone.arch_name) == ('PVTv2', 'b2')
    assert parameter_count(model) == 25_362_856


def test_the_readme_is_a_front_page_of_at_most_250_lines():
    lines = (ROOT / 'README.md').read_text().splitlines()
    assert len(lines) <= 250, f'README.md has {len(lines)} lines; move depth to docs/'


def test_readme_plain_pytorch_example_runs_without_any_openmmlab_package():
    """The example of "Use the backbone without OpenMMLab", as written there, in a process where
    mmengine, mmcv, mmdet, mmseg and mmpretrain cannot be imported: it prints what its comments
    say and imports none of them."""
    import subprocess
    import sys
    blocked = ('mmengine', 'mmcv', 'mmdet', 'mmseg', 'mmpretrain')
    program = (f'import sys\nfor name in {blocked!r}:\n    sys.modules[name] = None\n' +
               readme_python_block('from mmpvt.families.pvt_v2 import PVTv2') +
               'print(sorted(m for m in sys.modules if m.split(".")[0] in '
               f'{blocked!r} and sys.modules[m] is not None))\n')
    out = subprocess.run([sys.executable, '-c', program], capture_output=True, text=True, cwd=ROOT,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        'PVTv2 official', '[(1, 64, 28, 28), (1, 160, 14, 14), (1, 256, 7, 7)]', '[]'
    ]
