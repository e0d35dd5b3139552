# triggerd build.
#
# Sources are picked up by folder, so adding a module or a kind needs no edit here:
# every .c under router/, connectors/ and functions/ (but router/main.c) goes into
# libtriggerd.a, which the daemon, triggerctl, the tests, the fuzz targets and the
# benchmarks link; tests/unit/*.c form one Criterion binary; tests/fuzz/fuzz_*.c are
# libFuzzer targets; tests/tools/*.c and bench/*/*.c are small programs of their own.
#
# `make test` and `make run` install missing Debian packages first (scripts/deps.sh).
# BUILD selects the output folder, so the ASan build (build-asan/) and the fuzz build
# (build-fuzz/) live beside the normal one.

PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
CC      ?= cc
CFLAGS  ?= -O2 -g
SAN     ?=
PYTEST  ?= /usr/bin/python3 -m pytest
FUZZ_SECONDS ?= 60

PKGS      := rdkafka libcurl libconfig libmicrohttpd jansson sqlite3 hiredis libcrypto
WARNINGS  := -Wall -Wextra -Werror -Wshadow -Wformat=2
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS)) -lpaho-mqtt3as -lpthread -lm
# Where process functions find the shipped bootstraps when triggerd runs from the source tree
# (an installed triggerd finds PREFIX/share/triggerd/runtimes beside its binary first).
RUNTIME_DIR := $(CURDIR)/functions/runtimes
ALL_CFLAGS = -std=gnu11 $(WARNINGS) $(CFLAGS) $(SAN) -Iinclude -D_GNU_SOURCE -MMD -MP $(PKG_CFLAGS) \
	-DTD_RUNTIME_DIR='"$(RUNTIME_DIR)"'
ALL_LDFLAGS = $(SAN) $(LDFLAGS)

LIB_SRCS   := $(filter-out router/main.c,$(wildcard router/*.c connectors/*.c functions/*.c))
LIB_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/%.o)
CLI_SRCS   := $(wildcard cli/*.c)
CLI_OBJS   := $(CLI_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS  := $(wildcard tests/unit/*.c)
UNIT_OBJS  := $(UNIT_SRCS:%.c=$(BUILD)/%.o)
TOOL_SRCS  := $(wildcard tests/tools/*.c)
TOOLS      := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tools/%)
BENCH_SRCS := $(wildcard bench/*/*.c)
BENCHES    := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)
FUZZ_SRCS  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZERS    := $(FUZZ_SRCS:tests/fuzz/%.c=build-fuzz/%)
SOURCES    := $(shell find include router connectors functions cli tests bench -name '*.[ch]' 2>/dev/null)

.PHONY: all deps run test check unit integration asan fuzz fuzz-smoke bench format \
	format-check lint install clean

all: $(BUILD)/triggerd $(BUILD)/triggerctl $(TOOLS)

deps:
	@sh scripts/deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	$(BUILD)/triggerd -c config/triggerd.cfg

test: deps
	@$(MAKE) --no-print-directory check

check: all $(BUILD)/tests/unit_tests
	$(MAKE) --no-print-directory unit integration

UNIT_JOBS ?= 2
unit: $(BUILD)/tests/unit_tests
	$(BUILD)/tests/unit_tests --jobs=$(UNIT_JOBS)

integration: all
	TRIGGERD_BUILD=$(abspath $(BUILD)) $(PYTEST) -q tests/integration

asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan CFLAGS="-O1 -g" UNIT_JOBS=1 \
		SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" check

$(BUILD)/libtriggerd.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/triggerd: $(BUILD)/router/main.o $(BUILD)/libtriggerd.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/triggerctl: $(CLI_OBJS) $(BUILD)/libtriggerd.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/tests/unit_tests: $(UNIT_OBJS) $(BUILD)/libtriggerd.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lcriterion

$(BUILD)/tools/%: $(BUILD)/tests/tools/%.o $(BUILD)/libtriggerd.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/libtriggerd.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# libFuzzer targets: clang, with ASan and UBSan, the library built alongside.
FUZZ_FLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
fuzz:
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang CFLAGS="-O1 -g" SAN="$(FUZZ_FLAGS)" \
		build-fuzz/libtriggerd.a $(FUZZERS)

build-fuzz/fuzz_%: build-fuzz/tests/fuzz/fuzz_%.o build-fuzz/libtriggerd.a
	$(CC) -fsanitize=fuzzer,address,undefined -o $@ $^ $(PKG_LIBS)

fuzz-smoke: fuzz
	@set -e; for f in $(FUZZERS); do \
		name=$$(basename $$f); corpus=tests/fuzz/corpus/$${name#fuzz_}; \
		mkdir -p build-fuzz/corpus/$$name; \
		echo "fuzz-smoke: $$name for $(FUZZ_SECONDS) s"; \
		if ! $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			build-fuzz/corpus/$$name $$( [ -d $$corpus ] && echo $$corpus ) \
			> build-fuzz/$$name.log 2>&1; then \
			tail -n 40 build-fuzz/$$name.log; echo "fuzz-smoke: $$name FAILED"; exit 1; \
		fi; \
		grep -E "^stat::number_of_executed_units" build-fuzz/$$name.log || true; \
	done; echo "fuzz-smoke: every target ran $(FUZZ_SECONDS) s without a crash"

bench: deps
	@$(MAKE) --no-print-directory CFLAGS="-O2 -g -march=native" BUILD=build-bench all \
		$(subst $(BUILD)/,build-bench/,$(BENCHES))
	@for b in bench/*/run.sh; do echo "== $$b"; BUILD=build-bench sh $$b; done

format:
	clang-format -i $(SOURCES)

format-check:
	clang-format --dry-run --Werror $(SOURCES)

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
		--inline-suppr --suppress=missingIncludeSystem -Iinclude -D_GNU_SOURCE \
		router connectors functions cli

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/triggerd/examples \
		$(DESTDIR)$(PREFIX)/share/triggerd/runtimes $(DESTDIR)/etc/triggerd
	install -m 755 $(BUILD)/triggerd $(BUILD)/triggerctl $(DESTDIR)$(PREFIX)/bin/
	install -m 644 config/triggerd.cfg $(DESTDIR)$(PREFIX)/share/triggerd/
	install -m 644 config/examples/*.cfg $(DESTDIR)$(PREFIX)/share/triggerd/examples/
	cp -R functions/runtimes/. $(DESTDIR)$(PREFIX)/share/triggerd/runtimes/
	[ -e $(DESTDIR)/etc/triggerd/triggerd.cfg ] || \
		install -m 644 config/triggerd.cfg $(DESTDIR)/etc/triggerd/triggerd.cfg

clean:
	rm -rf build build-asan build-fuzz build-bench

-include $(shell find $(BUILD) build build-asan build-fuzz build-bench -name '*.d' 2>/dev/null)
