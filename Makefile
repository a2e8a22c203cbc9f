# Build/test/run plumbing for crs-restore. `make` alone lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help run test lint fmt venv clean-run bench load fuzz package package-test

help: ## List the targets
	@echo "crs-restore make targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  \1\t\2/' | expand -t 16

run: ## Run the function locally against the CRS sandbox and moto (Ctrl-C stops; PROFILE=release, TENCENT_API_VERSION=3)
	@bash scripts/run-local.sh

test: ## fmt --check, clippy -D warnings, cargo test against moto, cfn-lint (what CI runs)
	@bash scripts/test.sh

lint: ## cargo fmt --check and clippy -D warnings
	cargo fmt --check
	cargo clippy --locked --all-targets -- -D warnings

fmt: ## Format the code with cargo fmt
	cargo fmt

package: ## sam build for arm64 and x86_64 (cargo-lambda), zipped as sam deploy uploads them; sizes (docs/DEPLOY.md)
	@bash scripts/package.sh

package-test: ## make package, then the zips under AWS's Runtime Interface Emulator, qemu CPU models, glibc, IAM checks
	@bash scripts/package-test.sh

venv: ## Create .venv with moto and cfn-lint (requirements-dev.txt)
	@bash scripts/venv.sh

bench: ## Measure init, cold and warm latency, RSS, size, backend calls vs hello-world; criterion (BENCHMARKS.md)
	@bash scripts/bench.sh

load: ## Load test: 2000 signed restores + 2000 invalid requests at concurrency 50 on loopback (BENCHMARKS.md)
	@bash scripts/load.sh

clean-run: ## Stop leftover local processes and remove .run/
	-@bash scripts/run-local.sh --stop
	-@RUN_DIR=.run/test bash scripts/moto.sh stop
	rm -rf .run

fuzz: ## Long run: property tests at 1,000,000 cases per target, then cargo-fuzz targets (RELIABILITY.md)
	@bash scripts/fuzz.sh
