# Thin wrapper over CMake/CTest: these targets are the README's commands.
BUILD     ?= build
BUILDTYPE ?= RelWithDebInfo
CMAKE_ARGS ?=
JOBS      ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps configure build run check bench install clean asan tsan

all: build

deps:
	@sh scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILDTYPE) $(CMAKE_ARGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

# The main job: the bundled demo, run under the cap with leaks and stats.
run: build
	@$(BUILD)/tools/slabnotify demo

# Every test.
check: build
	@cd $(BUILD) && ctest --output-on-failure -j 1

# Benchmark programs (not tests): slabnotify against glibc, jemalloc,
# mimalloc and tcmalloc. BENCH_ARGS=--quick for a short run.
bench: build
	@sh bench/run_all.sh $(BUILD) $(BENCH_ARGS)

asan:
	@$(MAKE) check BUILD=build-asan CMAKE_ARGS="$(CMAKE_ARGS) -DSLABNOTIFY_SANITIZE=address -DSLABNOTIFY_BUILD_BENCH=OFF"

tsan:
	@$(MAKE) check BUILD=build-tsan CMAKE_ARGS="$(CMAKE_ARGS) -DSLABNOTIFY_SANITIZE=thread -DSLABNOTIFY_BUILD_BENCH=OFF"

install: build
	@cmake --install $(BUILD)

clean:
	rm -rf build build-asan build-tsan build-nonotify
