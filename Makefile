# Quick start (see README.md): `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= out/demo

.PHONY: setup demo test clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/ecgrender build --db demo --split-by window --out $(OUT)/dataset
	$(BIN)/ecgrender verify $(OUT)/dataset
	$(BIN)/ecgrender preview $(OUT)/dataset -o $(OUT)/preview.png
	rm -rf $(OUT)/run-refecg
	$(BIN)/ecgtrain fit $(OUT)/dataset --model refecg --epochs 10 --lr 0.01 --lr-step 4 --batch-size 32 \
		--precise-bn --workers 0 --device cpu --out $(OUT)/run-refecg --no-progress
	$(BIN)/ecgtrain compare $(OUT)/run-refecg
	$(BIN)/ecgtrain robustness $(OUT)/run-refecg --dataset $(OUT)/dataset --noise bw,ma,em,pl --snr 12,0 \
		--out $(OUT)/robustness --workers 0 --device cpu --no-progress
	$(BIN)/ecgtrain explain $(OUT)/run-refecg --dataset $(OUT)/dataset --out $(OUT)/explain --device cpu --no-progress

test: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) out build *.egg-info
