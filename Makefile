# Every target creates .venv from pyproject.toml on first use (and again when it changes).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BENCH_VENV := .venv-bench
BENCH_PY := $(BENCH_VENV)/bin/python
BENCH_STAMP := $(BENCH_VENV)/.installed
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export MPLBACKEND ?= Agg

.PHONY: install test demo demo-kalunga demo-firmware bench soak lint clean firmware firmware-test

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,stimulus,moabb,cluster]"
	touch $(STAMP)

# Two pytest workers (pytest-xdist), each test file on one worker: many tests wait on real
# time (LSL streams, watchdogs), so two workers halve the wall time even on two cores.
# One worker: `.venv/bin/python -m pytest -q` (add -x, -k ... as usual).
test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile

demo: $(STAMP)
	$(VENV)/bin/ssvep-exo demo

# The same closed loop driving the reference firmware's AVR image in simavr.
demo-firmware: $(STAMP) firmware
	$(VENV)/bin/ssvep-exo demo --port exofw://avr

demo-kalunga: $(STAMP)
	$(VENV)/bin/ssvep-exo demo --kalunga $(or $(DATA),../shared/data/kalunga2016)

$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_PY) -m pip install --quiet --upgrade pip
	$(BENCH_PY) -m pip install --quiet -e ".[dev,bench,cluster]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BENCH_PY) scripts/bench_all.py

soak: $(STAMP)
	$(PY) scripts/soak.py

# The reference controller firmware (devices/firmware, C): host build, AVR image, simavr runner.
firmware:
	$(MAKE) -C devices/firmware all

# Its C unit tests, then the Python tests that drive the host build and the AVR image in simavr.
firmware-test: $(STAMP)
	$(MAKE) -C devices/firmware test
	$(PY) -m pytest -q -p no:cacheprovider devices/firmware/tests tests/test_firmware_host_side.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) $(BENCH_VENV) build *.egg-info devices/firmware/build
