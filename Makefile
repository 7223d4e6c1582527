# cotlib: `make demo` runs the tutorial end to end offline; `make test` runs the whole test suite.
# Both create .venv and install the pinned stack first (Python 3.11 + pip; no conda needed).

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# llama-cpp-python has no wheel on PyPI: build it once, portable (-DGGML_NATIVE=OFF), into a wheelhouse that survives `make clean`.
WHEELHOUSE ?= $(HOME)/.cache/cotlib/wheels
LLAMA_CPP := llama-cpp-python==0.3.36
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))
# Tests, demo and stored outputs run offline: no download is tried (tests use loopback servers instead).
OFFLINE := COTLIB_OFFLINE=1 HF_HUB_OFFLINE=1
EXECUTE := $(BIN)/jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=1800 \
	--ExecutePreprocessor.record_timing=False --ExecutePreprocessor.kernel_name=python3

.PHONY: install demo test execute lock teacher-stop clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q pip==25.3
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PY) -m pip wheel -q --no-deps --no-cache-dir --find-links $(WHEELHOUSE) -w $(WHEELHOUSE) "$(LLAMA_CPP)"
	$(PY) -m pip install -q --find-links $(WHEELHOUSE) -c constraints.txt -e ".[local,train,dev]"
	$(PY) -m pip check
	touch $@

demo: install
	$(BIN)/cotlib teacher start
	rm -rf runs && mkdir -p runs
	cp notebooks/*.ipynb runs/
	cd runs && $(OFFLINE) ../$(EXECUTE) --inplace $(notdir $(NOTEBOOKS)) && \
		../$(BIN)/cotlib generate --input outputs/qa_train.jsonl --output outputs/cli_records.jsonl --limit 4 \
			--max-calls-per-question 6 --concurrency 2 --no-progress; \
		rc=$$?; cd .. && $(BIN)/cotlib doctor; $(BIN)/cotlib teacher stop; exit $$rc
	@echo "Executed notebooks and their outputs are in runs/."

test: install
	$(BIN)/cotlib teacher start
	$(OFFLINE) $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; $(BIN)/cotlib teacher stop; exit $$rc

# Re-run the notebooks in place, from scratch, so their stored outputs (checked by nbval) are current.
execute: install
	rm -rf notebooks/outputs
	$(BIN)/cotlib teacher start
	cd notebooks && $(OFFLINE) ../$(EXECUTE) --inplace $(notdir $(NOTEBOOKS)); rc=$$?; cd .. && \
		$(BIN)/cotlib teacher stop; exit $$rc

lock: install
	{ sed -n 1,2p constraints.txt; $(BIN)/pip freeze --exclude-editable | grep -v '^cotlib'; } > constraints.tmp && mv constraints.tmp constraints.txt

teacher-stop:
	-$(BIN)/cotlib teacher stop

clean: teacher-stop
	rm -rf $(VENV) runs .pytest_cache
