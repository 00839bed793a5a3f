# weir build. `make` builds the release binaries into build/release/;
# `make run` and `make test` first install what is missing (scripts/deps.sh).
CC ?= cc
MODE ?= release
BUILD := build/$(MODE)

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
CFLAGS_COMMON := -std=c11 -D_GNU_SOURCE -Isrc -pthread -g $(WARN)
ifeq ($(MODE),asan)
CFLAGS_MODE := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined -DWEIR_DEBUG
LDFLAGS_MODE := -fsanitize=address,undefined
else
CFLAGS_MODE := -O2
LDFLAGS_MODE :=
endif
ALL_CFLAGS := $(CFLAGS_COMMON) $(CFLAGS_MODE) $(CFLAGS)
LDLIBS := -lnghttp2 -lhiredis -lev -lyaml -lpcre2-8 -ljansson -lssl -lcrypto -lcrypt -lz -lbrotlienc -lbrotlidec -lzstd -lm -pthread

SRCS := $(shell find src -name '*.c' ! -path src/main.c | sort)
OBJS := $(SRCS:%.c=$(BUILD)/%.o)
# the admin dashboard's files, compiled in as a generated source
DASHBOARD_FILES := $(sort $(wildcard src/admin/dashboard/*))
OBJS += $(BUILD)/gen/dashboard_assets.o
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_REPLAY := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%_replay)
PYTEST := /usr/bin/python3 -m pytest
# integration test files run two at a time (pytest-xdist; a file's tests stay
# together, so module fixtures such as a Redis cluster start once): most of a
# test's time is waiting on sockets, not CPU
TEST_JOBS ?= 2

.PHONY: all build deps run test unit integration fuzz-replay fuzz bench format clean asan
all build: $(BUILD)/weir $(BUILD)/weir-demo

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/gen/dashboard_assets.c: tools/embed-assets.sh $(DASHBOARD_FILES)
	@mkdir -p $(dir $@)
	tools/embed-assets.sh $@ $(DASHBOARD_FILES)

$(BUILD)/gen/%.o: $(BUILD)/gen/%.c
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libweir.a: $(OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/weir: $(BUILD)/src/main.o $(BUILD)/libweir.a
	$(CC) $(LDFLAGS_MODE) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/weir-demo: tools/weir-demo.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS_MODE) -o $@ $< -lev

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libweir.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS_MODE) -o $@ $< $(BUILD)/libweir.a $(LDLIBS) -lcmocka

# Drives one store from stdin for tests/integration/test_store.py.
$(BUILD)/store_probe: tests/store/store_probe.c $(BUILD)/libweir.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS_MODE) -o $@ $< $(BUILD)/libweir.a $(LDLIBS)

# The eviction policies' hit ratios on a Zipf workload (bench/run.sh runs it).
$(BUILD)/cache-zipf: bench/cache_zipf.c $(BUILD)/libweir.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS_MODE) -o $@ $< $(BUILD)/libweir.a $(LDLIBS)

$(BUILD)/fuzz/%_replay: tests/fuzz/%.c tests/fuzz/replay.c $(BUILD)/libweir.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS_MODE) -o $@ $< tests/fuzz/replay.c $(BUILD)/libweir.a $(LDLIBS)

deps:
	@scripts/deps.sh build

run: deps
	@$(MAKE) --no-print-directory -j2 build
	@scripts/run-demo.sh $(BUILD)

# Everything a submission must pass: unit tests, integration tests against
# the release build, then unit, integration and the fuzz corpora again
# against an AddressSanitizer + UBSan build.
test:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory browser-deps
	@$(MAKE) --no-print-directory -j2 MODE=release build unit-bins
	@$(MAKE) --no-print-directory unit MODE=release
	@$(MAKE) --no-print-directory js-test
	@$(MAKE) --no-print-directory integration MODE=release
	@$(MAKE) --no-print-directory -j2 MODE=asan build unit-bins fuzz-bins
	@$(MAKE) --no-print-directory unit MODE=asan
	@$(MAKE) --no-print-directory fuzz-replay MODE=asan
	@$(MAKE) --no-print-directory integration MODE=asan
	@if command -v clang >/dev/null; then \
	  echo "== warnings as errors under clang too"; \
	  $(MAKE) --no-print-directory -j2 MODE=clang CC=clang build >/dev/null; fi

# playwright-core for the dashboard's browser test, as locked in tests/browser/
.PHONY: browser-deps
browser-deps: tests/browser/node_modules/.package-lock.json
tests/browser/node_modules/.package-lock.json: tests/browser/package.json tests/browser/package-lock.json
	scripts/browser-deps.sh

# the dashboard script's parser and percentile maths (node's test runner)
.PHONY: js-test
js-test:
	node --test tests/browser/

.PHONY: unit-bins fuzz-bins print-ldlibs
print-ldlibs:
	@echo $(LDLIBS)

unit-bins: $(UNIT_BINS)
fuzz-bins: $(FUZZ_REPLAY)

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

fuzz-replay: $(FUZZ_REPLAY)
	@set -e; for f in $(FUZZ_REPLAY); do \
	  name=$$(basename $$f _replay); name=$${name#fuzz_}; \
	  echo "== $$f tests/fuzz/corpus/$$name"; $$f tests/fuzz/corpus/$$name; done

integration: $(BUILD)/weir $(BUILD)/weir-demo $(BUILD)/store_probe
	WEIR_BIN=$(CURDIR)/$(BUILD)/weir WEIR_DEMO_BIN=$(CURDIR)/$(BUILD)/weir-demo \
	  WEIR_STORE_PROBE=$(CURDIR)/$(BUILD)/store_probe \
	  $(PYTEST) -q -p no:cacheprovider -n $(TEST_JOBS) --dist loadfile tests/integration

asan:
	@$(MAKE) --no-print-directory MODE=asan build

# libFuzzer (clang): `make fuzz FUZZ_SECONDS=60` runs every harness.
FUZZ_SECONDS ?= 30
fuzz:
	@scripts/fuzz.sh $(FUZZ_SECONDS)

bench:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory -j2 MODE=release build build/release/cache-zipf
	@bench/run.sh

format:
	clang-format -i $$(find src tests tools -name '*.[ch]')

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
