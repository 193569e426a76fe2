# The two commands of the quick start, plus the benchmark. Each one installs what is missing first.
BUILD ?= build
PREFIX ?= /usr/local
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo

.PHONY: all deps build test demo bench simulate fuzz format clean install dist portable

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900

# PREFIX/bin/ferry, PREFIX/libexec/ferry/ferry-mpi, the man pages and the completions (DESTDIR too).
install: build
	@cmake --install $(BUILD) --prefix $(PREFIX)

# $(BUILD)/ferry-VERSION.tar.gz: the committed tree, with the revision it was made from.
dist:
	@bash scripts/dist.sh $(BUILD)

# $(BUILD)/portable/ferry-VERSION-linux-x86_64(.tar.gz): ferry for glibc 2.28 systems (RHEL 8).
portable: deps
	@bash scripts/portable.sh $(BUILD)/portable

demo: build
	@bash scripts/demo.sh $(BUILD)/ferry

bench: build
	@bash bench/bench.sh $(BUILD)/ferry

# ferry stage at 3 to 10,000 nodes on SimGrid, beside the recipe: $(BUILD)/simulate/ (minutes).
simulate: build
	@bash sim/simulate.sh $(BUILD)

fuzz: deps
	@bash fuzz/run.sh $(BUILD)-fuzz $(or $(FUZZ_SECONDS),60)

format:
	@git ls-files '*.cpp' '*.hpp' | xargs clang-format -i --style=file

clean:
	rm -rf $(BUILD) $(BUILD)-fuzz
