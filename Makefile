# Convenience targets; each is a thin wrapper over a command documented in the README.
PYTHON ?= python3

.PHONY: install demo test lint format bench rules image-lint

install:
	$(PYTHON) -m pip install -e '.[test]'

demo:
	$(PYTHON) -m pip install -e . && mlops-exporter --demo

test:
	$(PYTHON) -m pip install -e '.[test]' && pytest -v --cov

lint:
	ruff check .
	ruff format --check .
	mypy mlops_core exporter

format:
	ruff format .

bench:
	bash bench/run_all.sh

rules:
	$(PYTHON) rules/generate.py

image-lint:
	hadolint Dockerfile
