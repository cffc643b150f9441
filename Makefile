# Two entry points do all set-up on a fresh machine with only python3:
#   make demo   - the whole pipeline against the embedded sandbox
#   make test   - the test suite
UV_VERSION := 0.13.8
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: demo test bench install clean chromium

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

# Bytecode compiled at install: every process the suite starts (sandboxes, Prefect's servers, `cdr`)
# would otherwise compile its imports again where bytecode is not written (PYTHONDONTWRITEBYTECODE).
.venv/.installed: pyproject.toml uv.lock Makefile $(if $(shell command -v uv 2>/dev/null),,.tools/bin/uv)
	$(UV) sync --locked --compile-bytecode --python python3
	touch $@

install: .venv/.installed

demo: install
	.venv/bin/cdr demo

test: install chromium
	.venv/bin/python -m pytest

# The dashboard tests drive Debian's chromium through playwright (never a downloaded browser).
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Benchmarks (not tests): the bench group adds the peers we compare against (dlt).
bench: install
	$(UV) sync --locked --compile-bytecode --python python3 --group bench
	.venv/bin/python -m bench

clean:
	rm -rf .venv .tools
