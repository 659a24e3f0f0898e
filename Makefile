# Thin wrapper: every target installs what it needs through scripts/setup first.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: setup build test test-fast demo bench clean

setup:
	scripts/setup

build: setup
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)

# The one test command: release build + ctest, the same under ASan+UBSan, then a
# bounded libFuzzer run of the spec parser.
test: setup
	scripts/test

demo: build
	scripts/demo

bench: build
	scripts/setup --bench
	bench/dag_overhead
	bench/video/run
	bench/video/realtime
	bench/spot/run
	bench/server/run
	bench/models/run

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
