# make demo: check, tabulate and run the bundled specs; make test: the test suite.
# Both create .venv (and install hcdsl into it, editable) when it is missing.
VENV := .venv

.PHONY: demo test

demo: $(VENV)/bin/hcdsl
	$(VENV)/bin/hcdsl demo

test: $(VENV)/bin/hcdsl
	$(VENV)/bin/python -m pytest -q

$(VENV)/bin/hcdsl:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -r requirements-dev.txt
	$(VENV)/bin/pip install -e .
