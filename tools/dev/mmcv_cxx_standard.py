#!/usr/bin/env python
"""Set the C++ standard that mmcv 2.1.0's setup.py gives the host compiler and nvcc.

    python tools/dev/mmcv_cxx_standard.py PATH/TO/mmcv-2.1.0/setup.py c++20

mmcv 2.1.0 appends ``-std=c++17`` to both the ``cxx`` and the ``nvcc`` flags of its extension
(after torch's own, so it wins); torch 2.14's headers stop below C++20
(``#error C++20 or later compatible compiler is required to use ATen``). tools/setup_env.sh reads
the standard torch needs from its ``ATen/ATen.h`` and calls this before building. Exits 1 with a
line saying what it found if the file does not have the two flag lines it expects.
"""
import argparse
import re
import sys

# the flags of the torch > 1.12 branches: host compiler (cxx) and nvcc
EXPECTED = (r"extra_compile_args\['cxx'\] = \['-std=c\+\+17'\]",
            r"extra_compile_args\['nvcc'\] \+= \['-std=c\+\+17'\]")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('setup_py', help="mmcv's setup.py, rewritten in place")
    parser.add_argument('standard', choices=('c++17', 'c++20'))
    args = parser.parse_args(argv)
    with open(args.setup_py) as f:
        text = f.read()
    for pattern in EXPECTED:
        found = len(re.findall(pattern, text))
        if found != 1:
            print(f'mmcv_cxx_standard: {args.setup_py}: expected one line matching {pattern}, '
                  f'found {found}')
            return 1
        text = re.sub(pattern, lambda m: m.group(0).replace('c++17', args.standard), text)
    with open(args.setup_py, 'w') as f:
        f.write(text)
    print(f'mmcv_cxx_standard: {args.setup_py}: cxx and nvcc use -std={args.standard}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
