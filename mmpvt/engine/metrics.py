"""Result dumps of ``tools/test.py --out``, written atomically.

mmengine's ``DumpResults`` and mmdet's ``DumpDetResults`` write the pickle with a plain
``open(path, 'wb')``: a test killed (or a disk filling up) while it writes leaves an empty or
truncated file where the previous results were. :func:`atomic_dump_metric` gives either class a
``compute_metrics`` that writes through :class:`mmpvt.fileio.AtomicLocalBackend`: the file holds
the old results or all of the new ones.
"""
from mmengine.fileio import dump
from mmengine.logging import print_log

from ..fileio import ATOMIC_BACKEND


class AtomicDumpMixin:
    """``compute_metrics`` of a dump metric (rank 0, after every rank's results are gathered),
    through the atomic backend."""

    out_file_path: str

    def compute_metrics(self, results: list) -> dict:
        dump(results, self.out_file_path, file_format='pkl',
             backend_args=dict(backend=ATOMIC_BACKEND))
        print_log(f'Results has been saved to {self.out_file_path}.', logger='current')
        return {}


def atomic_dump_metric(dump_class: type) -> type:
    """`dump_class` (mmengine's ``DumpResults``, or mmdet's ``DumpDetResults``, which also encodes
    masks as RLE) writing atomically."""
    return type(f'Atomic{dump_class.__name__}', (AtomicDumpMixin, dump_class), {})
