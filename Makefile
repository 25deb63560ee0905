# make demo: check, tabulate and run the bundled specs; make test: the test suite.
# Both create .venv (and install hcdsl into it, editable) when it is missing.
VENV := .venv

.PHONY: demo test browser

demo: $(VENV)/bin/hcdsl
	$(VENV)/bin/hcdsl demo

test: $(VENV)/bin/hcdsl browser
	$(VENV)/bin/python -m pytest -q

# The comparison report's test opens its HTML in headless Chromium: installed here where that
# is possible (root with apt, as in CI); elsewhere that one test is skipped and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "chromium not installed: the HTML report test will be skipped"

$(VENV)/bin/hcdsl:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -r requirements-dev.txt
	$(VENV)/bin/pip install -e .
