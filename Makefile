# Two commands on a fresh Debian 12 machine (see README):
#   make run    install what is missing, build, start rendervisor (default config)
#   make test   install what is missing, build, run every test, also under ASan+UBSan
BUILD ?= build
BUILD_ASAN ?= build-asan
MESON_ARGS ?=

.PHONY: all deps run test test-plain test-asan clean

all: $(BUILD)/build.ninja
	ninja -C $(BUILD)

deps:
	./scripts/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_ARGS)

$(BUILD_ASAN)/build.ninja:
	meson setup $(BUILD_ASAN) -Db_sanitize=address,undefined -Db_lundef=false $(MESON_ARGS)

# The children are found in PATH: put the freshly built ones first.
run: deps all
	PATH="$(CURDIR)/$(BUILD)/exporter:$(CURDIR)/$(BUILD)/renderer:$$PATH" \
	  exec $(BUILD)/supervisor/rendervisor

test: deps
	$(MAKE) -k --no-print-directory test-plain test-asan; status=$$?; \
	  python3 tools/test-summary.py $(BUILD) $(BUILD_ASAN); exit $$status

test-plain: $(BUILD)/build.ninja
	ninja -C $(BUILD)
	meson test -C $(BUILD) --print-errorlogs

test-asan: $(BUILD_ASAN)/build.ninja
	ninja -C $(BUILD_ASAN)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  meson test -C $(BUILD_ASAN) --print-errorlogs

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
