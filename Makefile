# The two commands of the README: `make demo` and `make test`. Both set everything up from nothing.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
AGECAM_ASSETS ?= $(HOME)/.cache/agecam
export AGECAM_ASSETS
DEMO_CLIP := $(AGECAM_ASSETS)/videos/face-demographics-walking-and-pause.gif
# Demo settings, not a store policy: Challenge 40 and a zone on the clip's left-hand customer (see the file).
DEMO_CONFIG := examples/demo-config.yaml

.PHONY: demo test lint bench clean

# ONNX Runtime's build: gpu where an NVIDIA driver answers, else cpu (override: make ORT=cpu).
ORT ?= $(shell nvidia-smi >/dev/null 2>&1 && echo gpu || echo cpu)
OTHER_ORT := $(if $(filter gpu,$(ORT)),onnxruntime,onnxruntime-gpu)
# One OpenCV and one ONNX Runtime per venv (their builds share a package folder): drop the ones that an
# older .venv or the other profile installed, before installing.
SETUP_VENV = $(PYTHON) -m venv $(VENV) && $(BIN)/pip install -q --upgrade pip && \
	{ $(BIN)/pip uninstall -q -y opencv-python $(OTHER_ORT) 2>/dev/null || true; }

# The till runtime (no torch, no matplotlib; the report and the review app included), for the demo.
$(BIN)/.runtime: pyproject.toml
	$(SETUP_VENV)
	$(BIN)/pip install -q -e '.[$(ORT)]'
	touch $@

# Everything: runtime, trainer (torch 2.14.1 + torchvision 0.29.1), export, the collector and test tools.
$(BIN)/.dev: pyproject.toml
	$(SETUP_VENV)
	$(BIN)/pip install -q -e '.[$(ORT),train,collector,dev]'
	touch $(BIN)/.runtime $@

demo: $(BIN)/.runtime
	$(BIN)/agecam assets fetch
	rm -f demo/agecam.db*
	$(BIN)/agecam --config $(DEMO_CONFIG) replay $(DEMO_CLIP) --pos examples/demo-pos.jsonl --db demo/agecam.db
	$(BIN)/agecam report --db demo/agecam.db --out demo/report.html
	@echo "report: demo/report.html (demo settings from $(DEMO_CONFIG): Challenge 40, not a store's Challenge 25)"

test: $(BIN)/.dev
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: $(BIN)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(BIN)/.runtime
	$(BIN)/agecam assets fetch
	$(BIN)/agecam bench edge --json

clean:
	rm -rf $(VENV) demo .pytest_cache .ruff_cache
