# Build, test and install the headers. `make test` is what CI runs (see .ci/run).
#   make test           every unit, contract and corpus-replay test; one closing "N passed, N failed"
#   make sanitize       the same under AddressSanitizer + UndefinedBehaviorSanitizer, and the
#                       concurrency tests (every test program that starts threads) under
#                       ThreadSanitizer
#   make check-headers  the compile matrix and link tests of every header (tests/structure)
#   make fuzz           a short libFuzzer run of every target (FUZZ_SECONDS each, default 20)
#   make bench          the benchmarks, each printed beside its baseline measured in the same run
#   make demo           builds and runs the demonstration program
#   make install        headers and a pkg-config file under PREFIX (default /usr/local)
#   make abi-update     record the public structs' layout after a deliberate ABI append

CC      ?= cc
CLANG   ?= clang
PREFIX  ?= /usr/local
BUILD   ?= build
WARN    := -Wall -Wextra -Wpedantic -Werror
CSTD    := -std=c99
OPT     ?= -O1 -g
LIBS    := -pthread -lm
SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_SECONDS ?= 20

HEADERS := $(wildcard *.h backends/*.h tests/contract/*.h examples/plugins/*.h tests/redis/*.h) \
           tests/test.h

# Optional backends need a C library (Redis also a server). Without it, make test skips that
# backend's tests and says so with the install command; in CI (CI=true) a missing one fails.
have_c_lib = $(shell printf '\043include <$(1)>\nint main(void) { return 0; }\n' | \
               $(CC) -x c - -o /dev/null $(2) >/dev/null 2>&1 && echo yes)
REDIS_PKGS    := libhiredis-dev redis-server
REDIS_ENABLED := $(if $(and $(call have_c_lib,hiredis/hiredis.h,-lhiredis),\
                            $(shell command -v redis-server)),yes)
REDIS_SRC     := $(if $(REDIS_ENABLED),$(wildcard tests/redis/test_*.c))
SQLITE_PKGS    := libsqlite3-dev
SQLITE_ENABLED := $(call have_c_lib,sqlite3.h,-lsqlite3)
SQLITE_SRC     := $(wildcard tests/unit/test_sqlite_*.c)
# $(call require_optional,ENABLED,WHAT,PKGS): a recipe line that skips loudly or fails in CI.
require_optional = if [ -z "$(1)" ]; then \
	  if [ "$$CI" = "true" ]; then \
	    echo "FAIL $(2) needs $(3), which CI must install: apt-get install $(3)"; exit 1; fi; \
	  echo "*** SKIPPED: $(2): $(3) not installed; to run them: apt-get install $(3) ***"; fi

UNIT_SRC     := $(filter-out $(if $(SQLITE_ENABLED),,$(SQLITE_SRC)),$(wildcard tests/unit/test_*.c))
CONTRACT_SRC := $(wildcard tests/contract/test_*.c)
DYNAMIC_SRC  := $(wildcard tests/dynamic/test_*.c)
# The concurrency tests: every test program that starts threads runs under TSan too.
THREAD_SRC   := $(shell grep -l pthread_create $(UNIT_SRC) $(CONTRACT_SRC) $(DYNAMIC_SRC) \
                                            $(REDIS_SRC) /dev/null)
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
BENCH_SRC    := $(filter-out $(if $(REDIS_ENABLED),,bench/bench_redis_backend.c) \
                             $(if $(SQLITE_ENABLED),,bench/bench_sqlite_backend.c),\
                  $(wildcard bench/bench_*.c))

ALL_TEST_SRC := $(UNIT_SRC) $(CONTRACT_SRC) $(DYNAMIC_SRC) $(REDIS_SRC)
TEST_BINS   := $(patsubst tests/%.c,$(BUILD)/test/%,$(ALL_TEST_SRC))
ASAN_BINS   := $(patsubst tests/%.c,$(BUILD)/asan/%,$(ALL_TEST_SRC))
TSAN_BINS   := $(patsubst tests/%.c,$(BUILD)/tsan/%,$(THREAD_SRC))
REPLAY_BINS := $(patsubst %,$(BUILD)/replay/%,$(FUZZ_TARGETS))
ASAN_REPLAY := $(patsubst %,$(BUILD)/asan/replay/%,$(FUZZ_TARGETS))
FUZZ_BINS   := $(patsubst %,$(BUILD)/fuzz/%,$(FUZZ_TARGETS))
BENCH_BINS  := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

# "prog --next prog2 --next ..." for tests/run.sh; each replay gets its corpus directory.
run_list = $(foreach t,$(1),$(t) --next) \
           $(foreach r,$(2),$(r) tests/fuzz/corpus/$(notdir $(r)) --next)

.PHONY: all test sanitize check-headers fuzz bench demo install uninstall clean abi-update
all: $(TEST_BINS)

test: $(TEST_BINS) $(REPLAY_BINS)
	@$(call require_optional,$(REDIS_ENABLED),the Redis backend's tests,$(REDIS_PKGS))
	@$(call require_optional,$(SQLITE_ENABLED),the SQLite backend's tests,$(SQLITE_PKGS))
	@tests/run.sh $(call run_list,$(TEST_BINS),$(REPLAY_BINS)) tests/structure/readme_example.sh --next tests/structure/static_archive.sh --next tests/structure/install.sh --next tests/structure/examples.sh --next tests/structure/custom_backend.sh --next tests/structure/taskq.sh --next python3 tests/structure/abi_layout.py \
	  --next python3 tests/structure/api_doc.py --next python3 bench/plot.py --check \
	  --next python3 tests/gen/test_scaffold.py --next tests/gen/render_and_build.sh

sanitize: $(ASAN_BINS) $(ASAN_REPLAY) $(TSAN_BINS)
	@$(call require_optional,$(REDIS_ENABLED),the Redis backend's tests,$(REDIS_PKGS))
	@$(call require_optional,$(SQLITE_ENABLED),the SQLite backend's tests,$(SQLITE_PKGS))
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	 TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	 tests/run.sh $(call run_list,$(ASAN_BINS) $(TSAN_BINS),$(ASAN_REPLAY))

check-headers:
	@tests/structure/check_headers.sh

# After a deliberate, version-bumped append to a public struct: record the new layout.
abi-update:
	@python3 tests/structure/abi_layout.py --update

fuzz: $(FUZZ_BINS)
	@for t in $(FUZZ_TARGETS); do \
	  rm -rf $(BUILD)/fuzz/work-$$t; mkdir -p $(BUILD)/fuzz/work-$$t; \
	  echo "== fuzz $$t for $(FUZZ_SECONDS)s (new inputs go to $(BUILD)/fuzz/work-$$t)"; \
	  if $(BUILD)/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	      -artifact_prefix=$(BUILD)/fuzz/$$t- $(BUILD)/fuzz/work-$$t tests/fuzz/corpus/$$t \
	      >$(BUILD)/fuzz/$$t.log 2>&1; then \
	    grep -E '^stat::number_of_executed_units' $(BUILD)/fuzz/$$t.log; \
	  else \
	    tail -n 40 $(BUILD)/fuzz/$$t.log; echo "fuzz $$t FAILED: see $(BUILD)/fuzz/$$t.log"; exit 1; \
	  fi; \
	done

bench: $(BENCH_BINS)
	@for b in $(BENCH_BINS); do echo "== $$b"; $$b || exit 1; done

# make demo: the registry tour, then taskq (examples/taskq) running its scenario: separate worker
# processes on an SQLite file when SQLite is there, else the same in one process on the memory
# backend. The binary's name says which backends it has, so installing SQLite later rebuilds it.
TASKQ_VARIANT := memory$(if $(SQLITE_ENABLED),-sqlite)$(if $(REDIS_ENABLED),-redis)
TASKQ_BIN     := $(BUILD)/examples/taskq-$(TASKQ_VARIANT)
TASKQ_DEFS    := $(if $(SQLITE_ENABLED),-DTASKQ_WITH_SQLITE) $(if $(REDIS_ENABLED),-DTASKQ_WITH_REDIS)
TASKQ_LIBS    := $(if $(SQLITE_ENABLED),-lsqlite3) $(if $(REDIS_ENABLED),-lhiredis)
demo: $(BUILD)/examples/plugin_demo $(TASKQ_BIN)
	@$(BUILD)/examples/plugin_demo
	@echo
	@sh examples/taskq/demo.sh $(TASKQ_BIN)

$(TASKQ_BIN): examples/taskq/taskq.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(OPT) -I. $(TASKQ_DEFS) $< -o $@ $(LIBS) $(TASKQ_LIBS)

# Headers keep their relative layout (they include each other by relative path).
PUBLIC_HEADERS = $(wildcard *.h backends/*.h tests/contract/*_contract.h)
install:
	install -d $(DESTDIR)$(PREFIX)/include/plugin-persistence $(DESTDIR)$(PREFIX)/lib/pkgconfig
	for h in $(PUBLIC_HEADERS); do \
	  install -D -m 644 $$h $(DESTDIR)$(PREFIX)/include/plugin-persistence/$$h || exit 1; done
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(shell sed -n 's/^#define PLG_VERSION_STRING "\(.*\)"/\1/p' plugin_registry.h)|' \
	  plugin-persistence.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/plugin-persistence.pc

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/include/plugin-persistence $(DESTDIR)$(PREFIX)/lib/pkgconfig/plugin-persistence.pc

clean:
	rm -rf $(BUILD)

# Plugins the dynamic tests load call the registry's functions: the host exports them. The
# tests compile those plugins themselves at run time with $$CC.
$(BUILD)/test/dynamic/% $(BUILD)/asan/dynamic/% $(BUILD)/tsan/dynamic/%: LIBS += -rdynamic
$(BUILD)/bench/bench_dynamic_plugins: LIBS += -rdynamic
# The Redis backend links hiredis.
$(BUILD)/test/redis/% $(BUILD)/asan/redis/% $(BUILD)/tsan/redis/%: LIBS += -lhiredis
$(BUILD)/bench/bench_redis_backend: LIBS += -lhiredis
# The SQLite backend links libsqlite3.
$(BUILD)/test/unit/test_sqlite_% $(BUILD)/asan/unit/test_sqlite_% \
$(BUILD)/tsan/unit/test_sqlite_%: LIBS += -lsqlite3
$(BUILD)/bench/bench_sqlite_backend: LIBS += -lsqlite3

$(BUILD)/test/%: tests/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(OPT) -I. $< -o $@ $(LIBS)

$(BUILD)/asan/replay/%: tests/fuzz/fuzz_%.c tests/fuzz/replay_main.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(OPT) $(SAN) -I. $< tests/fuzz/replay_main.c -o $@ $(LIBS)

$(BUILD)/asan/%: tests/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(OPT) $(SAN) -I. $< -o $@ $(LIBS)

$(BUILD)/tsan/%: tests/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CLANG) $(CSTD) $(WARN) -O1 -g -fsanitize=thread -I. $< -o $@ $(LIBS)

$(BUILD)/replay/%: tests/fuzz/fuzz_%.c tests/fuzz/replay_main.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(OPT) -I. $< tests/fuzz/replay_main.c -o $@ $(LIBS)

$(BUILD)/fuzz/%: tests/fuzz/fuzz_%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CLANG) $(CSTD) -g -O1 -fsanitize=fuzzer,address,undefined -I. $< -o $@ $(LIBS)

$(BUILD)/bench/%: bench/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) -O2 -DNDEBUG -I. $< -o $@ $(LIBS)

$(BUILD)/examples/%: examples/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(OPT) -I. $< -o $@ $(LIBS)
