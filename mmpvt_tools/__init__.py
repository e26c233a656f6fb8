"""What the tools under ``tools/`` do beyond what mmpvt offers its users: the one-command demo
(:mod:`.demo`) and its synthetic shapes data (:mod:`.demo_data`), the paper's Figure 5 in
miniature (:mod:`.figure5`), plots of logged metrics (:mod:`.curves`), parameter and FLOP counts
(:mod:`.flops`) and the benchmarks (:mod:`.benchmarks`, timed and measured by :mod:`.measure`).

mmpvt_tools imports mmpvt, never the reverse, and is not part of the installed wheel
(``setup.py`` packages mmpvt and mmpvt_runtime only). It is found from the repository root: the
tests import it as pytest puts the root on ``sys.path``, and each script under ``tools/`` that
imports it puts the root first on ``sys.path`` itself, before it imports mmpvt, so that both
come from the same checkout. (``python tools/x.py`` puts only the script's folder there, and the
editable install of mmpvt, ``pip install -e .`` of this flat layout, maps the packages mmpvt and
mmpvt_runtime alone through an import finder, not the repository root.)
"""
import os

# the repository root, which holds mmpvt_tools and configs/
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
