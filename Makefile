# sfs_ros — the two commands of the README:
#   make demo   run the main job (sets everything up first)
#   make test   run the tests: ruff + pytest (sets everything up first)
#   make test-fast  the ROS-free, model-free tests only (about a minute)
.PHONY: setup demo test test-fast lint clean

setup:
	@bash scripts/setup_env.sh

demo: setup
	@bash scripts/run_demo.sh

test: setup
	@bash scripts/run_tests.sh

test-fast: setup
	@bash scripts/run_tests.sh -m "not models and not dds"

lint: setup
	@.venv/bin/ruff check .

clean:
	rm -rf build .pytest_cache .ruff_cache
