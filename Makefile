# One command each, doing all of its own set-up on a fresh machine (README "Quick start").
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test world data notebooks results bench venv clean

# CPU stack: torch pinned by constraints-cpu.txt, so no CUDA packages are pulled.
$(STAMP): requirements.txt constraints-cpu.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints-cpu.txt -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

## the main job on the offline default (stages that exist so far)
demo: $(STAMP)
	$(BIN)/python -m igpt_lib reproduce --preset cpu --out runs/cpu

## the whole test suite, notebooks included (smoke preset)
test: $(STAMP)
	$(BIN)/python -m pytest -q

## the offline world of the cpu preset (base models cached in ~/.cache/igpt_kit)
world: $(STAMP)
	$(BIN)/python -m igpt_lib world build --preset cpu --out runs/cpu

## regenerate the committed data/ (the cpu preset's datasets)
data: $(STAMP)
	$(BIN)/python -m igpt_lib world data --preset cpu --out data

## re-execute the notebooks in place on the cpu preset, so their outputs are this run's
NOTEBOOKS ?= notebooks/[0-9]*.ipynb
notebooks: $(STAMP)
	for nb in $(NOTEBOOKS); do \
	  $(BIN)/python -m papermill --cwd notebooks -p PRESET cpu $$nb $$nb || exit 1; done

## every number behind README and the notebooks, regenerated into a fresh runs/cpu (~70 min on 2 cores):
## the pipeline with Figure 1's sizes and seeds and 2 rounds, the notebooks (04 trains the β sweep that
## the over-optimisation claim reads), evaluation again, README/docs tables, then 05/06 on the final report
results: $(STAMP)
	test ! -e runs/cpu || (echo "runs/cpu exists: move it away first (make results regenerates it)"; exit 1)
	$(BIN)/python -m igpt_lib reproduce --preset cpu --out runs/cpu --full --rounds 2
	$(MAKE) notebooks
	$(BIN)/python -m igpt_lib eval --preset cpu --out runs/cpu
	$(BIN)/python docs/update_numbers.py
	$(MAKE) notebooks NOTEBOOKS="notebooks/05_evaluation.ipynb notebooks/06_small_beats_large.ipynb"

## the peer benchmarks (issue #8): e2e, K-way RM vs TRL, PPO vs TRL 1.12, generation; JSON in
## bench/results, README "Performance" rewritten from it (about 30 min on 2 cores)
bench: $(STAMP)
	$(BIN)/python bench/e2e.py --keep runs/bench
	$(BIN)/python bench/rm_bench.py
	$(BIN)/python bench/ppo_bench.py --run runs/bench/cpu
	$(BIN)/python bench/generation.py
	$(BIN)/python bench/report.py

clean:
	rm -rf $(VENV) runs
