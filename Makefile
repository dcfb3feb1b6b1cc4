# Developer shortcuts; `make test` is exactly what CI runs (.ci/run).
BUILD_DIR ?= build

.PHONY: test sanity lint smoke build clean demo

test:
	bash scripts/test.sh

sanity:
	bash scripts/test.sh sanity

lint:
	bash scripts/test.sh lint

smoke:
	bash scripts/test.sh smoke-218

# Build the collection tarball into $(BUILD_DIR) and check that no development
# files (see build_ignore in galaxy.yml) ended up in it.
build:
	bash scripts/setup-venv.sh .venv 3.12 requirements/test.txt
	mkdir -p $(BUILD_DIR)
	.venv/bin/ansible-galaxy collection build --force --output-path $(BUILD_DIR) .
	@tarball=$$(ls -t $(BUILD_DIR)/homelab-pangolin_authentik-*.tar.gz | head -n1); \
	leaked=$$(tar -tzf $$tarball | grep -E '^(\.venv|\.git/|\.ci/|\.ansible/|\.hypothesis/|\.pytest_cache/|tests/\.collections/|build/|Makefile$$)' || true); \
	if [ -n "$$leaked" ]; then echo "development files in $$tarball:"; echo "$$leaked"; exit 1; fi; \
	echo "built $$tarball ($$(tar -tzf $$tarball | wc -l) entries)"

# The whole setup against local simulators of Pangolin and authentik.
demo:
	bash scripts/setup-venv.sh .venv 3.12 requirements/test.txt
	.venv/bin/python scripts/demo.py

clean:
	rm -rf $(BUILD_DIR) .ansible tests/.collections tests/output
