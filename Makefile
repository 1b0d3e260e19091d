# tally: build, test and install the toolkit. `make help` lists the targets.

# ---- user-overridable settings -------------------------------------------
CC ?= cc
CFLAGS ?= -O2
CPPFLAGS ?=
LDFLAGS ?=
PREFIX ?= /opt/tally
DESTDIR ?=
# Installed helpers are stripped of symbols (STRIP=: keeps them).
STRIP ?= strip
# SANITIZE=1 builds the helpers with ASan and UBSan (dynamic, with cc) into
# build/san/ (so the static build in build/ stays as it is), and `make test
# SANITIZE=1` runs the whole suite against them: any sanitizer report (memory
# error, undefined behaviour, leak) fails the run.
SANITIZE ?=
# The shells every shell-library test runs under.
TEST_SHELLS ?= dash busybox-ash bash
# Seconds each fuzz target runs for in `make test`.
FUZZ_SECONDS ?= 10

# ---- derived settings -----------------------------------------------------
BUILD := $(if $(SANITIZE),build/san,build)
HELPERS := tally-log tally-metric tally-httpd tally-trace
RUNTIME := healthcheck metrics-exporter
LIB_SRC := $(sort $(wildcard lib/c/*.c))
LIB_HDR := $(wildcard lib/c/*.h)
UNIT_SRC := $(sort $(wildcard tests/c/test_*.c))
SHELL_LIBS := $(wildcard lib/base/*.sh) lib/runtime/metrics-exporter.sh
SCRIPTS := $(SHELL_LIBS) lib/runtime/healthcheck examples/demo-build.sh \
	tests/deps.sh tests/run.sh tests/bench.sh $(wildcard tests/bench/*.sh) .ci/run \
	examples/build-image.sh $(wildcard examples/*/features/*.sh examples/*/app/*.sh examples/*/healthcheck.d/*)
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
# Seconds each fuzz target runs in `make fuzz`.
FUZZ_LONG ?= 300

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
STD := -std=c99 -D_DEFAULT_SOURCE

# The helpers are static: musl-gcc when it is installed (unless CC was
# given), else $(CC) -static, else dynamic, and the build says so.
ifeq ($(SANITIZE),)
ifeq ($(origin CC),default)
HELPER_CC := $(if $(shell command -v musl-gcc 2>/dev/null),musl-gcc,$(CC))
else
HELPER_CC := $(CC)
endif
STATIC := $(shell printf 'int main(void){return 0;}\n' | $(HELPER_CC) -x c -static -o /dev/null - >/dev/null 2>&1 && echo -static)
# A helper is exec'd once per logged command: a lean image (unused
# functions and data dropped, code and data in two segments, not padded
# apart to pages) starts about 0.02 ms faster. Left out where the linker
# does not take the options.
LEAN_LDFLAGS := $(shell printf 'int main(void){return 0;}\n' | $(HELPER_CC) -x c $(STATIC) -Wl,--gc-sections -Wl,-z,noseparate-code -o /dev/null - >/dev/null 2>&1 && echo -Wl,--gc-sections -Wl,-z,noseparate-code)
HELPER_CFLAGS := $(CFLAGS) $(if $(LEAN_LDFLAGS),-ffunction-sections -fdata-sections)
else
HELPER_CC := $(CC)
STATIC :=
HELPER_CFLAGS := $(CFLAGS) -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

# Under SANITIZE=1 the tests run against build/san/ (TALLY_TEST_BUILD, read by
# tests/lib/common.bash), with TALLY_SANITIZE=1 for the few tests that cannot
# hold for a dynamic sanitized build, and every report is written under
# build/san/sanitizer/ (asan|ubsan.PROGRAM.PID); the run fails on any
# report. An empty file there is named but not a failure: a process opened
# its log and was killed before it wrote a byte (the fault tests SIGKILL
# helpers at random), and a process that met an error before it was killed
# makes its test fail on its own.
SAN_LOG := $(CURDIR)/$(BUILD)/sanitizer
SAN_ENV := $(if $(SANITIZE),TALLY_SANITIZE=1 TALLY_TEST_BUILD=$(CURDIR)/$(BUILD) \
	ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1:log_exe_name=1:log_path=$(SAN_LOG)/asan \
	UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1:log_exe_name=1:log_path=$(SAN_LOG)/ubsan)

SAN_FLAGS := -g -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

LIB_OBJ := $(LIB_SRC:lib/c/%.c=$(BUILD)/obj/%.o)
TEST_LIB_OBJ := $(LIB_SRC:lib/c/%.c=$(BUILD)/test/obj/%.o)
UNIT_BIN := $(UNIT_SRC:tests/c/%.c=$(BUILD)/test/%)

.PHONY: all test demo bench lint install clean help deps-demo deps-test \
	deps-bench unit stage fuzz fuzz-short image

# ---- all ---------------------------------------------------------------
all: $(HELPERS:%=$(BUILD)/bin/%) stage ## build the helpers and stage /opt/tally's layout in build/

$(BUILD)/obj/%.o: lib/c/%.c $(LIB_HDR)
	@mkdir -p $(@D)
	$(HELPER_CC) $(STD) $(WARN) $(HELPER_CFLAGS) $(CPPFLAGS) -Ilib/c -c -o $@ $<

$(BUILD)/obj/libtally.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $(LIB_OBJ)

$(BUILD)/bin/%: bin/%.c $(BUILD)/obj/libtally.a $(LIB_HDR)
	@mkdir -p $(@D)
	@if [ -z "$(STATIC)" ] && [ -z "$(SANITIZE)" ]; then \
	  echo "tally: warning: $(HELPER_CC) cannot link statically here; building a dynamic $*"; fi
	$(HELPER_CC) $(STD) $(WARN) $(HELPER_CFLAGS) $(CPPFLAGS) -Ilib/c $(STATIC) $(LEAN_LDFLAGS) $(LDFLAGS) \
	  -o $@ $< $(BUILD)/obj/libtally.a $(if $(filter tally-metric,$*),-lm)

# build/ holds the installed layout: bin/ (helpers, runtime commands) and lib/.
stage: $(HELPERS:%=$(BUILD)/bin/%)
	@mkdir -p $(BUILD)/bin $(BUILD)/lib/base $(BUILD)/lib/runtime
	@cp lib/base/*.sh $(BUILD)/lib/base/
	@cp lib/runtime/healthcheck lib/runtime/metrics-exporter.sh $(BUILD)/lib/runtime/
	@cp VERSION $(BUILD)/VERSION
	@ln -sf ../lib/runtime/healthcheck $(BUILD)/bin/healthcheck
	@ln -sf ../lib/runtime/metrics-exporter.sh $(BUILD)/bin/metrics-exporter

# ---- install -------------------------------------------------------------
install: all ## install to $(DESTDIR)$(PREFIX) (default /opt/tally): bin/, lib/ and VERSION
	mkdir -p $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/base $(DESTDIR)$(PREFIX)/lib/runtime
	cp VERSION $(DESTDIR)$(PREFIX)/VERSION
	cp $(HELPERS:%=$(BUILD)/bin/%) $(DESTDIR)$(PREFIX)/bin/
	$(if $(SANITIZE),:,$(STRIP)) $(HELPERS:%=$(DESTDIR)$(PREFIX)/bin/%)
	cp lib/base/*.sh $(DESTDIR)$(PREFIX)/lib/base/
	cp lib/runtime/healthcheck lib/runtime/metrics-exporter.sh $(DESTDIR)$(PREFIX)/lib/runtime/
	chmod 0755 $(DESTDIR)$(PREFIX)/lib/runtime/healthcheck $(DESTDIR)$(PREFIX)/lib/runtime/metrics-exporter.sh
	ln -sf ../lib/runtime/healthcheck $(DESTDIR)$(PREFIX)/bin/healthcheck
	ln -sf ../lib/runtime/metrics-exporter.sh $(DESTDIR)$(PREFIX)/bin/metrics-exporter

# ---- tests ---------------------------------------------------------------
$(BUILD)/test/obj/%.o: lib/c/%.c $(LIB_HDR)
	@mkdir -p $(@D)
	$(CC) $(STD) $(WARN) $(SAN_FLAGS) -Ilib/c -c -o $@ $<

$(BUILD)/test/libtally.a: $(TEST_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $(TEST_LIB_OBJ)

# A unit test may #include the .c file it tests (to reach static functions);
# the archive then supplies only what the test does not define itself.
$(BUILD)/test/test_%: tests/c/test_%.c tests/c/check.h $(BUILD)/test/libtally.a $(LIB_HDR) $(wildcard bin/*.c lib/c/*.c)
	@mkdir -p $(@D)
	$(CC) $(STD) $(WARN) -Wno-missing-prototypes $(SAN_FLAGS) -Ilib/c -Ibin -o $@ $< $(BUILD)/test/libtally.a -lm

unit: $(UNIT_BIN) ## build and run the C unit tests (ASan + UBSan)
	@set -e; for t in $(UNIT_BIN); do echo "unit: $$t"; $$t; done

# Fuzz targets: tests/fuzz/fuzz_NAME.c defines LLVMFuzzerTestOneInput and is
# linked with lib/c (it must not #include a lib/c .c file; it may #include a
# bin/*.c under a renamed main). Seeds live in tests/fuzz/corpus/NAME/; new
# inputs go to build/fuzz/corpus/NAME/, never into the repository.
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(LIB_SRC) $(LIB_HDR)
	@mkdir -p $(@D)
	clang $(STD) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	  -Ilib/c -Ibin -o $@ $< $(LIB_SRC) -lm

fuzz-short: $(FUZZ_BIN) ## run each fuzz target for FUZZ_SECONDS (part of make test)
	@set -e; for f in $(FUZZ_BIN); do n=$${f##*/fuzz_}; \
	  mkdir -p $(BUILD)/fuzz/corpus/$$n tests/fuzz/corpus/$$n; \
	  echo "fuzz: $$n for $(FUZZ_SECONDS) s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -artifact_prefix=$(BUILD)/fuzz/ \
	    $(BUILD)/fuzz/corpus/$$n tests/fuzz/corpus/$$n 2>$(BUILD)/fuzz/$$n.log || \
	    { tail -40 $(BUILD)/fuzz/$$n.log; exit 1; }; \
	  grep -E '^stat::number_of_executed_units' $(BUILD)/fuzz/$$n.log; done

fuzz: ## run each fuzz target for FUZZ_LONG seconds (default 300)
	@$(MAKE) fuzz-short FUZZ_SECONDS=$(FUZZ_LONG)

test: deps-test all lint unit fuzz-short ## run every test: C units, fuzzing, helpers, libraries under each shell, Prometheus end to end
ifeq ($(SANITIZE),)
	@TEST_SHELLS="$(TEST_SHELLS)" sh tests/run.sh
else
	@rm -rf $(SAN_LOG); mkdir -p $(SAN_LOG); rc=0; n=0; \
	  for d in otlp-node cache; do [ ! -e build/$$d ] || [ -e $(BUILD)/$$d ] || ln -s ../$$d $(BUILD)/$$d; done; \
	  env $(SAN_ENV) TEST_SHELLS="$(TEST_SHELLS)" sh tests/run.sh || rc=$$?; \
	  for f in $(SAN_LOG)/*; do \
	    if [ -s "$$f" ]; then echo "sanitizer report $$f:"; cat "$$f"; n=$$((n + 1)); \
	    elif [ -e "$$f" ]; then echo "sanitizers: $${f##*/} is empty (opened, nothing written): not a report"; fi; \
	  done; \
	  if [ "$$n" -gt 0 ]; then echo "sanitizers: $$n reports"; rc=1; else echo "sanitizers: no report"; fi; exit $$rc
endif

deps-test:
	@sh tests/deps.sh test

deps-demo:
	@sh tests/deps.sh demo

deps-bench:
	@sh tests/deps.sh bench

# ---- demo ----------------------------------------------------------------
demo: deps-demo all ## run the main job: a real multi-feature build, logged, measured and scraped
	@sh examples/demo-build.sh

# ---- lint ----------------------------------------------------------------
lint: ## shellcheck -s sh every library and script; build the C with -Werror
	shellcheck -s sh $(SCRIPTS)
	@mkdir -p $(BUILD)/lint
	@set -e; for f in $(LIB_SRC) $(wildcard bin/*.c); do \
	  echo "cc -Werror $$f"; \
	  $(CC) $(STD) $(WARN) -Werror -O2 -Ilib/c -fsyntax-only $$f; done

# ---- bench ---------------------------------------------------------------
bench: deps-bench all ## print speed ratios against the tools a user would otherwise pick
	@sh tests/bench.sh

# ---- image ---------------------------------------------------------------
image: ## build the toolkit image from Dockerfile (docker build where an engine runs, else buildah bud)
	@sh examples/build-image.sh

clean: ## remove build/
	rm -rf $(BUILD)

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | \
	  awk -F'\t' '{ printf "  %-10s %s\n", $$1, $$2 }'
