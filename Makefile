# Squeeze: one-command build, test and demo on Debian 12.
#   make demo   install what is missing, build, run the main job end to end
#   make test   install what is missing, build, run every test
BUILD_DIR ?= build
JOBS      ?= 2
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo

.PHONY: all deps configure build fuzz-build test demo run bench clean

all: build

deps:
	@bash deploy/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja $(CMAKE_FLAGS) > $(BUILD_DIR).configure.log 2>&1 || \
	  { cat $(BUILD_DIR).configure.log; exit 1; }

build: configure
	@cmake --build $(BUILD_DIR) -j$(JOBS)

# The libFuzzer targets (clang, ASan, UBSan) in their own build dir; ctest runs each for a while.
fuzz-build: deps
	@JOBS=$(JOBS) bash scripts/fuzz.sh build $(CURDIR)/$(BUILD_DIR)-fuzz

test: build fuzz-build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS)

demo: build
	@bash scripts/demo.sh $(BUILD_DIR)

# A server for you to use: 127.0.0.1:50051, state in ./data.
run: build
	$(BUILD_DIR)/bin/squeezed --data-dir ./data --listen 127.0.0.1:50051

bench: build
	@bash scripts/bench.sh $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR) $(BUILD_DIR).configure.log $(BUILD_DIR)-fuzz $(BUILD_DIR)-fuzz.configure.log
