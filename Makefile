# The README's commands. STACK picks the environment: latest (default, .venv) or oldest
# (.venv-oldest), as in requirements/stacks/; MMPVT_VENV overrides the venv path.
STACK ?= latest
MMPVT_STACK := $(STACK)
ifeq ($(STACK),latest)
MMPVT_VENV ?= .venv
else
MMPVT_VENV ?= .venv-$(STACK)
endif
export MMPVT_STACK MMPVT_VENV
PY := $(MMPVT_VENV)/bin/python

.PHONY: install test test-fast lint demo

install:  ## create $(MMPVT_VENV) and install the stack's pinned versions + mmpvt (STACK=oldest: torch 2.1)
	bash tools/setup_env.sh

test:  ## run the test suite with the venv interpreter, one worker per core, file by file
	$(PY) -m pytest tests -q -n 2 --dist loadfile

test-fast:  ## backbones, layers, checkpoint loaders, transforms, argument checks (< 60 s), on both cores
	$(PY) -m pytest tests -q -m "not slow" -n 2 --dist loadfile

LINTED := mmpvt mmpvt_runtime mmpvt_tools tools tests configs setup.py
lint:  ## flake8, isort --check and yapf --diff with the settings of setup.cfg (what CI runs)
	$(PY) -m flake8 $(LINTED)
	$(PY) -m isort --check-only --quiet $(LINTED)
	$(PY) -m yapf --diff --recursive $(LINTED)

demo: export MMPVT_DEMO_VIA = make
demo:  ## train + evaluate PVT-T RetinaNet on the bundled synthetic data (CPU, ~4.5 min); ARGS=--full: the longer run, ARGS=--help: all options
	$(PY) tools/demo.py $(ARGS)
