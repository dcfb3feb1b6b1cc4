# Developer shortcuts; `make test` is exactly what CI runs (.ci/run).
# The virtualenvs are made by scripts/setup-venv.sh: .venv is the main line
# (the newest Python 3.11-3.13 found, ansible-core 2.20 on Python 3.12+ or
# 2.19 on 3.11), .venv-218 the old line (ansible-core 2.18).
BUILD_DIR ?= build

.PHONY: test sanity units lint pytest-218 galaxy ee docs build clean demo release

test:
	bash scripts/test.sh

sanity:
	bash scripts/test.sh sanity

# ansible-test units: the pure unit tests of tests/unit.
units:
	bash scripts/test.sh units

lint:
	bash scripts/test.sh lint

# The pytest suite on ansible-core 2.18 (but for the files scripts/test.sh leaves out there).
pytest-218:
	bash scripts/test.sh pytest-218

# galaxy-importer (Galaxy's upload checks) on the built tarball.
galaxy:
	bash scripts/test.sh galaxy

# The tarball in an execution environment build context (ansible-builder).
ee:
	bash scripts/test.sh ee

# antsibull-docs lint-collection-docs: the docs and their semantic markup.
docs:
	bash scripts/test.sh docs

# Build the collection tarball into $(BUILD_DIR) and check that no development
# files (see build_ignore in galaxy.yml) ended up in it.
build:
	bash scripts/setup-venv.sh main
	mkdir -p $(BUILD_DIR)
	.venv/bin/ansible-galaxy collection build --force --output-path $(BUILD_DIR) .
	@tarball=$$(ls -t $(BUILD_DIR)/homelab-pangolin_authentik-*.tar.gz | head -n1); \
	leaked=$$(tar -tzf $$tarball | grep -E '^(\.venv|\.git/|\.ci/|\.ansible/|\.hypothesis/|\.pytest_cache/|tests/\.collections/|build/|scripts/|requirements/|Makefile$$)' || true); \
	if [ -n "$$leaked" ]; then echo "development files in $$tarball:"; echo "$$leaked"; exit 1; fi; \
	tar -tzf $$tarball | grep -qx 'requirements.txt' || { echo "requirements.txt is missing from $$tarball"; exit 1; }; \
	echo "built $$tarball ($$(tar -tzf $$tarball | wc -l) entries)"

# The whole setup against local simulators of Pangolin and authentik.
demo:
	bash scripts/setup-venv.sh main
	.venv/bin/python scripts/demo.py

# A release: galaxy.yml's version set to VERSION, and changelogs/fragments/ (with a release_summary
# fragment) turned into CHANGELOG.rst and changelogs/changelog.yaml by antsibull-changelog, which asks
# the main line's ansible-doc which modules are new in the release.
release:
	@test -n "$(VERSION)" || { echo "usage: make release VERSION=X.Y.Z"; exit 1; }
	bash scripts/setup-venv.sh main
	bash scripts/setup-venv.sh changelog
	sed -i 's/^version: .*/version: $(VERSION)/' galaxy.yml
	.venv-changelog/bin/antsibull-changelog lint
	PATH="$(CURDIR)/.venv/bin:$$PATH" .venv-changelog/bin/antsibull-changelog release --version $(VERSION)

clean:
	rm -rf $(BUILD_DIR) .ansible tests/.collections tests/output
