# Two commands on a fresh machine; each creates .venv on first use (.ci/install.sh) and reuses it after.
#   make matrix   install, then the main job: every model x attack x threat setting on MNIST, and its report
#   make test     install, then the tests (the fast suite; `make test-slow` adds the slow ones, as CI does)
DATASET ?= mnist
PRESET ?= paper

.PHONY: matrix test test-slow install

.venv/bin/bench: pyproject.toml .ci/install.sh
	bash .ci/install.sh
	touch .venv/bin/bench

install: .venv/bin/bench

matrix: .venv/bin/bench
	.venv/bin/bench matrix --dataset $(DATASET) --preset $(PRESET)

test: .venv/bin/bench
	.venv/bin/python -m pytest -n 2

test-slow: .venv/bin/bench
	.venv/bin/python -m pytest -n 2 -m slow
