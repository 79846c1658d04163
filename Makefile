# Two commands: `make run` (set up, build, index the stdlib, run example queries) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(abspath $(BIN)):$(PATH)
STAMP  := $(VENV)/.deps-installed
# The last two lines are the lens[semantic] extra (Stage-C), so CI runs the real model, and the lens[ray]
# extra (lens.cluster), so CI runs the cluster tests on a local Ray.
DEPS   := "maturin>=1.7,<2" "numpy>=1.24" "structlog>=23.1" "prometheus_client>=0.20" "tomli>=2; python_version < '3.11'" "pytest>=8" "hypothesis>=6.100" \
          "pytest-benchmark>=4" "ruff>=0.5" "mypy>=1.10" \
          "starlette>=0.37" "uvicorn>=0.29" "httpx>=0.27" "ripgrep==14.1.0" \
          "onnxruntime>=1.17" "tokenizers>=0.15" "usearch>=2.12" \
          "ray==2.60.0"

.PHONY: run test develop rust-test py-test gate lint bench bench-kernel bench-stage-b bench-guard eval clean

run: develop
	$(BIN)/python -m lens demo --out .lens-demo

test: develop rust-test py-test gate lint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml Makefile
	$(BIN)/python -m pip install -q --disable-pip-version-check $(DEPS)
	touch $(STAMP)

# Release build of the extension, installed into the venv in editable mode.
develop: $(STAMP)
	$(BIN)/maturin develop --release --quiet

rust-test:
	cargo test --lib --quiet

py-test: develop
	$(BIN)/python -m pytest -q

# The one timing gate (pytest-benchmark, Stage-A p95 on the stdlib); it lives in benches/.
gate: develop
	$(BIN)/python -m pytest -q benches/test_stage_a_gate.py

lint: $(STAMP)
	cargo fmt --check
	$(BIN)/ruff check python tests benches
	$(BIN)/ruff format --check python tests benches
	$(BIN)/mypy

# Performance: pytest-benchmark on the stdlib, criterion, and the kernel run beside ripgrep.
bench: develop
	$(BIN)/python -m pytest benches -q --benchmark-only
	cargo bench --bench stage_a
KERNEL ?= /usr/src/linux-source-6.1
bench-kernel: develop
	$(BIN)/python -m pip install -q --disable-pip-version-check ripgrep==14.1.0
	$(BIN)/python benches/kernel_vs_rg.py --corpus $(KERNEL) --json .lens-kernel.json

# Stage-B: latency and the cache workload on the dev corpus, then the kernel (builds /tmp/lens-kernel).
bench-stage-b: develop
	../shared/eval/prepare_dev.sh .lens-eval
	$(BIN)/python benches/stage_b.py dev
	$(BIN)/python benches/stage_b.py kernel --build

# The guard under a Stage-A SLO nothing meets, on kernel-doc questions (see BENCHMARKS.md).
KQ ?= /work/kq-full
bench-guard: develop
	$(BIN)/python benches/guard_fallback.py --tree $(KQ)/tree --queries $(KQ)/queries.jsonl

# The shared golden dev set (needs ../shared).
eval: develop
	../shared/eval/prepare_dev.sh .lens-eval
	$(BIN)/python ../shared/eval/evaluate.py --corpus .lens-eval/cpython-lib --nodoc .lens-eval/cpython-lib-nodoc \
		--queries ../shared/eval/dev/queries.jsonl --json .lens-eval/dev-scores.json

clean:
	rm -rf $(VENV) target .lens-demo .lens-eval
