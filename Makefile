# fraud-monitor: the README's two commands are `make demo` and `make test`.
# Both set up what they need on a fresh machine: the virtualenv, the Kafka jars, a broker.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KAFKA_DIR ?= .kafka
KAFKA_PORT ?= 9092
TEST_KAFKA_DIR ?= .kafka-test
PYTEST_ARGS ?=
# Helm, for the chart's tests (deploy/helm/fraud-monitor): built from its Go module with the
# Go toolchain, once per version, into ~/.cache/fraud-monitor (about 9 minutes on a fresh
# 2-core machine, README "Kubernetes (Helm)"). tests/unit/test_helm_chart.py reads the
# version from this line.
HELM_VERSION ?= v4.3.2
HELM := $(HOME)/.cache/fraud-monitor/helm-$(HELM_VERSION)/helm
KUBECHECK := $(BIN)/kubecheck

.PHONY: venv native jars apt-deps helm kubecheck kafka-up kafka-down demo test unit lint bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The hot path compiled with mypyc (monitor/runtime/native.py): a no-op when the build matches
# the sources; without a C compiler it says why and everything runs as pure Python.
native: venv
	$(BIN)/fraudmon native build

jars: venv
	$(BIN)/python -c "from streams.devtools.jars import ensure_jars; print(ensure_jars())"

# Prometheus (with promtool) and Alertmanager (with amtool) from Debian's packages, for
# the rule unit tests and the integration tests with real peers; PostgreSQL for the alert
# store's tests (the suite runs its own server: streams/devtools/postgres.py); Chromium
# (and a font it draws text with) for the console's browser test. Installed only when a
# binary or the font is missing; needs root or sudo.
apt-deps:
	@missing=""; \
	for pair in prometheus:prometheus promtool:prometheus \
	            prometheus-alertmanager:prometheus-alertmanager amtool:prometheus-alertmanager \
	            chromium:chromium; do \
	  command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair##*:}"; \
	done; \
	command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	  || missing="$$missing postgresql"; \
	test -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf || missing="$$missing fonts-dejavu-core"; \
	missing=$$(echo $$missing | tr ' ' '\n' | sort -u | tr '\n' ' '); \
	if [ -n "$${missing% }" ]; then \
	  sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing Debian packages: $$missing"; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends \
	    $$missing >/dev/null || exit 1; \
	fi

helm: $(HELM)

$(HELM):
	@command -v go >/dev/null 2>&1 || { echo "make helm: needs Go 1.26+ on the PATH"; exit 1; }
	GOBIN=$(dir $(HELM)) go install \
	  helm.sh/helm/$(firstword $(subst ., ,$(HELM_VERSION)))/cmd/helm@$(HELM_VERSION)

# The offline checker of rendered manifests against the Kubernetes API's Go types.
kubecheck: $(KUBECHECK)

$(KUBECHECK): tests/kubecheck/main.go tests/kubecheck/go.mod tests/kubecheck/go.sum | $(STAMP)
	@command -v go >/dev/null 2>&1 || { echo "make kubecheck: needs Go 1.26+ on the PATH"; exit 1; }
	cd tests/kubecheck && go build -buildvcs=false -trimpath -o $(abspath $(KUBECHECK)) .

kafka-up: jars
	$(BIN)/fraudmon kafka up --dir $(KAFKA_DIR) --port $(KAFKA_PORT)

kafka-down: venv
	$(BIN)/fraudmon kafka down --dir $(KAFKA_DIR) --port $(KAFKA_PORT)

demo: jars native
	$(BIN)/fraudmon demo --port $(KAFKA_PORT)

lint: venv
	$(BIN)/ruff check monitor streams tests
	$(BIN)/mypy

unit: native helm kubecheck
	$(BIN)/python -m pytest tests/unit -q $(PYTEST_ARGS)

# Starts a broker of its own on a free port, runs lint, unit and integration tests
# against it, and stops the broker whatever the outcome.
test: jars apt-deps helm kubecheck lint native
	@port=$$($(BIN)/python -c "from streams.devtools.broker import free_port; print(free_port())"); \
	rm -rf $(TEST_KAFKA_DIR); \
	$(BIN)/fraudmon kafka up --dir $(TEST_KAFKA_DIR) --port $$port || exit 1; \
	FRAUDMON_TEST_BOOTSTRAP=127.0.0.1:$$port $(BIN)/python -m pytest -q $(PYTEST_ARGS); \
	status=$$?; \
	$(BIN)/fraudmon kafka down --dir $(TEST_KAFKA_DIR) --port $$port; \
	exit $$status

# Starts a broker of its own on free ports; BENCH_ARGS="--events 20000 --only replay,e2e".
BENCH_ARGS ?=
bench: jars native
	$(BIN)/fraudmon bench $(BENCH_ARGS)

clean:
	rm -rf $(TEST_KAFKA_DIR) .demo .state .pytest_cache .mypy_cache .ruff_cache
	test ! -x $(BIN)/fraudmon || $(BIN)/fraudmon native clean
