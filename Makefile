# The two commands of the quick start, plus the benchmark. Each one installs what is missing first.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo

.PHONY: all deps build test demo bench fuzz format clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900

demo: build
	@bash scripts/demo.sh $(BUILD)/ferry

bench: build
	@bash bench/bench.sh $(BUILD)/ferry

fuzz: deps
	@bash fuzz/run.sh $(BUILD)-fuzz $(or $(FUZZ_SECONDS),60)

format:
	@git ls-files '*.cpp' '*.hpp' | xargs clang-format -i --style=file

clean:
	rm -rf $(BUILD) $(BUILD)-fuzz
