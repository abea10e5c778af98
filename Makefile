# Two commands on a fresh Debian 12 machine (see README):
#   make run    install what is missing, build, start rendervisor (default config)
#   make test   install what is missing, build, run every test, also under ASan+UBSan,
#               the unit tests under valgrind, and the libFuzzer targets
SHELL := /bin/bash
BUILD ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
# Empty: each fuzz target runs its own count (tests/fuzz/run.sh); a number
# runs every target that many times.
FUZZ_RUNS ?=
MESON_ARGS ?=

.PHONY: all deps run test test-plain test-asan valgrind valgrind-log fuzz fuzz-log clean

all: $(BUILD)/build.ninja
	ninja -C $(BUILD)

deps:
	./scripts/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_ARGS)

$(BUILD_ASAN)/build.ninja:
	meson setup $(BUILD_ASAN) -Db_sanitize=address,undefined -Db_lundef=false $(MESON_ARGS)

$(BUILD_FUZZ)/build.ninja:
	CC=clang meson setup $(BUILD_FUZZ) -Dfuzz=true -Dtests=false -Db_lundef=false $(MESON_ARGS)

# The children are found in PATH: put the freshly built ones first.
run: deps all
	PATH="$(CURDIR)/$(BUILD)/exporter:$(CURDIR)/$(BUILD)/renderer:$$PATH" \
	  exec $(BUILD)/supervisor/rendervisor

test: deps
	rm -f $(BUILD)/valgrind.log $(BUILD_FUZZ)/fuzz.log
	$(MAKE) -k --no-print-directory test-plain valgrind-log test-asan fuzz-log; status=$$?; \
	  python3 tools/test-summary.py --extra $(BUILD)/valgrind.log --extra $(BUILD_FUZZ)/fuzz.log \
	    $(BUILD) $(BUILD_ASAN) || status=1; \
	  exit $$status

test-plain: $(BUILD)/build.ninja
	ninja -C $(BUILD)
	meson test -C $(BUILD) --print-errorlogs

test-asan: $(BUILD_ASAN)/build.ninja
	ninja -C $(BUILD_ASAN)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  meson test -C $(BUILD_ASAN) --print-errorlogs

# Every cmocka unit test of the plain build under valgrind's memcheck; the
# last line of the output is the tally, one per test binary.
valgrind: $(BUILD)/build.ninja
	ninja -C $(BUILD)
	tests/unit/valgrind.sh $(BUILD)

# The same, its output also kept for the closing count of `make test`.
valgrind-log: $(BUILD)/build.ninja
	ninja -C $(BUILD)
	set -o pipefail; tests/unit/valgrind.sh $(BUILD) 2>&1 | tee $(BUILD)/valgrind.log

# libFuzzer targets (clang), a bounded number of runs each; the last line
# of the output is the tally.
fuzz: $(BUILD_FUZZ)/build.ninja
	tests/fuzz/run.sh $(BUILD_FUZZ) $(FUZZ_RUNS)

# The same, its output also kept for the closing count of `make test`.
fuzz-log: $(BUILD_FUZZ)/build.ninja
	set -o pipefail; tests/fuzz/run.sh $(BUILD_FUZZ) $(FUZZ_RUNS) 2>&1 | tee $(BUILD_FUZZ)/fuzz.log

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
