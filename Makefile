# shared-nothing (libsn) build. GNU make only.
#
#   make            build libsn.a, libsn.so.0, sn.pc, the sample apps, tests and benchmarks
#   make lib        only the library (needs liburing, hwloc, xxHash; installs nothing)
#   make test       build and run every Criterion test (tests/test_*.c) and check script
#                   (tests/tools/check_*.sh: layering, the uninstalled sn.pc)
#   make asan       the whole test suite under AddressSanitizer + UBSan ($(BUILD)-asan/)
#   make tsan       the whole test suite under ThreadSanitizer ($(BUILD)-tsan/, Criterion shim)
#   BUILD=dir       build somewhere else than build/ (e.g. one folder per concurrent job)
#   make bench      build and run the benchmarks (bench/bench_*.c, bench/bench_*.sh) with progress,
#                   then write bench/results/<date>.md + PNG plots (SN_BENCH_QUICK=1: short runs)
#   make bench-report  rewrite that report from the last raw run, without rerunning
#   make fuzz       build tests/fuzz/fuzz_*.c with clang's libFuzzer+ASan+UBSan ($(BUILD)-fuzz/)
#                   and run each for FUZZ_SECONDS (default 60) on a copy of its seed corpus
#   make deps       install the Debian packages the project needs (DEPS="lib test": some groups)
#   make install / uninstall   honour PREFIX and DESTDIR
#   make clean      remove $(BUILD) and its -asan, -tsan and -fuzz siblings
#   CFLAGS, CPPFLAGS, CXXFLAGS, LDFLAGS, LDLIBS   add to the project's flags (OPT=-O2 by default)
#
# Every goal first checks the Debian packages it needs (sh .ci/deps.sh --check GROUP, see
# there) and stops with their names and the install command when some are missing; make never
# installs them itself except for `make deps`. DEPS_CHECK=0 skips the check.
#   make api-doc    regenerate docs/API.md from the public headers (tests/test_api_doc.c)
#
# Sources are discovered by wildcard, so adding a file needs no Makefile change:
#   core/*.c partition/*.c reactor/*.c        -> libsn
#   apps/<name>/*.c except main.c             -> build/libsnapps.a (app logic that tests link)
#   apps/<name>/main.c                        -> build/bin/sn-<name>
#   tests/test_*.c                            -> build/tests/test_* (Criterion)
#   tests/tools/*.c                           -> build/tools/* (built by make tests)
#   tests/tools/check_*.sh                    -> run by make test after the Criterion tests
#   tests/support/*.c                         -> linked into every test
#   bench/bench_*.c                           -> build/bench/bench_*
#   bench/bench_*.sh                          -> run by `make bench` after the binaries

BUILD     ?= build
SAN       ?=
PREFIX    ?= /usr/local
LIBDIR    ?= $(PREFIX)/lib
INCDIR    ?= $(PREFIX)/include
BINDIR    ?= $(PREFIX)/bin

# The version is written once, as SN_VERSION_MAJOR/MINOR/PATCH in include/sn/common.h; the
# library's file names, sn.pc and SN_VERSION_STRING all follow it. The soname follows the major.
sn_version_part = $(shell sed -n 's/^.define SN_VERSION_$(1) *\([0-9][0-9]*\)$$/\1/p' include/sn/common.h)
VERSION_MAJOR := $(call sn_version_part,MAJOR)
VERSION_MINOR := $(call sn_version_part,MINOR)
VERSION_PATCH := $(call sn_version_part,PATCH)
VERSION   := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)
SOVERSION := $(VERSION_MAJOR)
ifneq ($(words $(VERSION_MAJOR) $(VERSION_MINOR) $(VERSION_PATCH)),3)
$(error cannot read SN_VERSION_MAJOR/MINOR/PATCH from include/sn/common.h)
endif

# ---- flags ------------------------------------------------------------------------------------
# The project's required flags live in SN_* variables, so CFLAGS, CPPFLAGS, CXXFLAGS, LDFLAGS
# and LDLIBS given on the command line (make CFLAGS=-O3) are added after them, never instead.
# OPT is the optimisation level (-O2; -O1 under the sanitizers); CFLAGS=-O3 wins over it.
PKGS      := liburing hwloc libxxhash
WARN      := -Wall -Wextra -Wstrict-prototypes -Wshadow
ifeq ($(CI),true)
WARN      += -Werror
endif
OPT       ?= -O2
CFLAGS    ?= -g
CXXFLAGS  ?= -g
SN_CPPFLAGS := -Iinclude -I. -D_GNU_SOURCE
SN_CFLAGS   := -std=gnu11 -fPIC -fvisibility=hidden -pthread $(WARN)
# C++ (tests/cxx_api.cc): the public headers must compile warning-free as C++.
SN_CXXFLAGS := -std=gnu++17 -fno-exceptions -fno-rtti -pthread -Wall -Wextra -Werror
SN_LDFLAGS  := -pthread
SN_LDLIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -luring -lhwloc -lxxhash) -lpthread -lm

TEST_LIBS := -lcriterion
ifeq ($(SAN),asan)
OPT       := -O1
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif
ifeq ($(SAN),tsan)
# Criterion aborts under TSan (Snaipe/Criterion#274), so tests build against a small
# source-compatible shim that runs every Test() in one process.
OPT       := -O1
SAN_FLAGS := -fsanitize=thread -fno-omit-frame-pointer
SN_CFLAGS += -Wno-tsan
TEST_CPPFLAGS := -Itests/shim
TEST_LIBS :=
TEST_SHIM := tests/shim/shim.c
endif
SN_CFLAGS   += $(OPT) $(SAN_FLAGS)
SN_CXXFLAGS += $(OPT) $(SAN_FLAGS)
SN_LDFLAGS  += $(SAN_FLAGS)

COMPILE.sn  = $(CC) $(SN_CPPFLAGS) $(CPPFLAGS) $(SN_CFLAGS) $(CFLAGS)
COMPILE.snx = $(CXX) $(SN_CPPFLAGS) $(CPPFLAGS) $(SN_CXXFLAGS) $(CXXFLAGS)
LINK.sn     = $(CC) $(SN_CFLAGS) $(CFLAGS) $(SN_LDFLAGS) $(LDFLAGS)

# ---- what each goal needs ---------------------------------------------------------------------
# Before building anything, each goal checks the Debian packages it needs (.ci/deps.sh groups;
# a check never installs) and stops with the package names and the apt-get command when some
# are missing. DEPS_CHECK=0 skips the check (e.g. with libraries built from source).
DEPS_CHECK ?= 1
DEPS_all     := tests benches
DEPS_lib     := lib
DEPS_apps    := lib
DEPS_install := lib
DEPS_tests   := tests
DEPS_test    := test
DEPS_asan    := test
DEPS_tsan    := test
DEPS_benches := benches
DEPS_bench   := bench
DEPS_fuzz    := fuzz
NO_DEPS_GOALS := clean deps api-doc format bench-report uninstall
deps_for = $(if $(filter $(1),$(NO_DEPS_GOALS)),,$(or $(DEPS_$(1)),lib))
DEPS_GROUPS := $(sort $(foreach g,$(or $(MAKECMDGOALS),all),$(call deps_for,$(g))))
ifeq ($(DEPS_CHECK)$(if $(DEPS_GROUPS),y),1y)
ifneq ($(shell sh .ci/deps.sh --check $(DEPS_GROUPS) >&2 || echo missing),)
$(error missing packages for make $(or $(MAKECMDGOALS),all) (above); DEPS_CHECK=0 skips this check)
endif
endif

LIB_SRCS   := $(sort $(wildcard core/*.c partition/*.c reactor/*.c))
LIB_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
APP_DIRS   := $(sort $(dir $(wildcard apps/*/main.c)))
APP_NAMES  := $(patsubst apps/%/,%,$(APP_DIRS))
APPLIB_SRCS:= $(filter-out %/main.c,$(sort $(wildcard apps/*/*.c)))
APPLIB_OBJS:= $(APPLIB_SRCS:%.c=$(BUILD)/obj/%.o)
APP_BINS   := $(APP_NAMES:%=$(BUILD)/bin/sn-%)
# TESTS="test_ring test_mesh check_layering" limits the test build and run to those: Criterion
# files tests/test_*.c, and the check scripts tests/tools/check_*.sh (run as tests too).
TEST_SCRIPTS := $(if $(TESTS),$(wildcard $(TESTS:%=tests/tools/%.sh)),$(sort $(wildcard tests/tools/check_*.sh)))
TEST_SRCS  := $(if $(TESTS),$(patsubst %,tests/%.c,$(filter-out $(TEST_SCRIPTS:tests/tools/%.sh=%),$(TESTS))),$(sort $(wildcard tests/test_*.c)))
TEST_BINS  := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
SUPPORT_SRCS := $(sort $(wildcard tests/support/*.c)) $(TEST_SHIM)
SUPPORT_OBJS := $(SUPPORT_SRCS:%.c=$(BUILD)/obj/%.o)
# BENCHES="bench_ring" limits the benchmark build and run likewise.
BENCH_SRCS := $(if $(BENCHES),$(wildcard $(BENCHES:%=bench/%.c)),$(sort $(wildcard bench/bench_*.c)))
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)
# Peers some benchmarks link besides libck (Debian packages, installed by .ci/deps.sh).
BENCH_LIBS_bench_partition := -lmemcached
BENCH_LIBS_bench_ketama := -lmemcached
BENCH_LIBS_bench_fiber := -lboost_context
# Peers some tests check libsn against (Debian packages, installed by .ci/deps.sh).
TEST_LIBS_test_ketama_libmemcached := -lmemcached -lhashkit
# Benchmark scripts (bench/bench_*.sh, e.g. against nginx) run after the binaries.
BENCH_SCRIPTS := $(if $(BENCHES),$(wildcard $(BENCHES:%=bench/%.sh)),$(sort $(wildcard bench/bench_*.sh)))
TOOL_SRCS  := $(sort $(wildcard tests/tools/*.c))
TOOL_BINS  := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tools/%)

STATIC    := $(BUILD)/libsn.a
SHARED    := $(BUILD)/libsn.so.$(VERSION)
APPLIB    := $(BUILD)/libsnapps.a
PC        := $(BUILD)/sn.pc
UNINST_PC := $(BUILD)/sn-uninstalled.pc

.SECONDARY:
.PHONY: all lib apps tests benches test asan tsan bench bench-report fuzz deps install uninstall clean format api-doc

all: lib apps tests benches

lib: $(STATIC) $(SHARED) $(PC) $(UNINST_PC)
apps: $(APP_BINS)
tests: $(TEST_BINS) $(TOOL_BINS)
# bench/kv_floor.c is a server bench/bench_kv_floor.sh starts, not a benchmark of its own.
benches: $(BENCH_BINS) $(BUILD)/bench/kv_floor

# Installs the Debian packages the project needs (as root; otherwise prints the command):
# the one target that installs anything, and only when asked. DEPS="test bench" narrows it.
deps:
	@sh .ci/deps.sh $(DEPS)

# jump_regs.c's forms are picked bare only on AMD CPUs with AVX-512 (sn__jump_pick; elsewhere
# through jump.c's wrappers that clear the upper halves; tests call them on any AVX-512 CPU),
# where dirty upper vector halves cost no transition: no vzeroupper on their way out, ~1% of a
# one-key lookup measured on Zen 5 (docs/PERFORMANCE.md). x86-64 only:
# the file is empty elsewhere, and other compilers' targets do not know the option.
ifneq ($(filter x86_64-% amd64-%,$(shell $(CC) -dumpmachine)),)
$(BUILD)/obj/partition/jump_regs.o: SN_CFLAGS += -mno-vzeroupper
endif
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(COMPILE.sn) -MMD -MP -c $< -o $@

$(BUILD)/obj/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(COMPILE.sn) $(TEST_CPPFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/tests/%.o: tests/%.cc
	@mkdir -p $(dir $@)
	$(COMPILE.snx) -MMD -MP -c $< -o $@

$(STATIC): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

$(SHARED): $(LIB_OBJS)
	$(LINK.sn) -shared -Wl,-soname,libsn.so.$(SOVERSION) -o $@ $^ $(SN_LDLIBS) $(LDLIBS)
	ln -sf libsn.so.$(VERSION) $(BUILD)/libsn.so.$(SOVERSION)
	ln -sf libsn.so.$(SOVERSION) $(BUILD)/libsn.so

PC_SUBST  = s|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCDIR@|$(INCDIR)|; s|@VERSION@|$(VERSION)|
$(PC): sn.pc.in Makefile include/sn/common.h
	@mkdir -p $(dir $@)
	sed -e '$(PC_SUBST)' $< > $@

# sn-uninstalled.pc: builds a program against this checkout without make install, e.g.
#   PKG_CONFIG_PATH=build pkg-config --cflags --libs sn-uninstalled
# (pkg-config also picks it for plain `sn` when build/ is on PKG_CONFIG_PATH). The headers are
# the tree's include/, the library this build folder, with an rpath so the program runs in place.
UNINST_SUBST = s|@PREFIX@|$(CURDIR)|; s|@LIBDIR@|$(abspath $(BUILD))|; s|@INCDIR@|$(CURDIR)/include|; \
	s|@VERSION@|$(VERSION)|; s|^Name: sn$$|Name: sn-uninstalled|; \
	s|^Libs: -L$${libdir} |Libs: -L$${libdir} -Wl,-rpath,$${libdir} |
$(UNINST_PC): sn.pc.in Makefile include/sn/common.h
	@mkdir -p $(dir $@)
	sed -e '$(UNINST_SUBST)' $< > $@

$(APPLIB): $(APPLIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/bin/sn-%: $(BUILD)/obj/apps/%/main.o $(APPLIB) $(STATIC)
	@mkdir -p $(dir $@)
	$(LINK.sn) -o $@ $< $(APPLIB) $(STATIC) $(SN_LDLIBS) $(LDLIBS)

# The README's API tour, extracted so tests/test_readme.c compiles it.
$(BUILD)/gen/readme_tour.inc: README.md
	@mkdir -p $(dir $@)
	awk '/<!-- tour:begin -->/{on=1;next} /<!-- tour:end -->/{on=0} on && !/^```/' $< > $@

$(BUILD)/obj/tests/test_readme.o: $(BUILD)/gen/readme_tour.inc
$(BUILD)/obj/tests/test_readme.o: TEST_CPPFLAGS += -I$(BUILD)/gen

# The README's example program, extracted so tests/test_readme.c runs it and checks that it
# is docs/example.c word for word.
$(BUILD)/gen/readme_example.c: README.md
	@mkdir -p $(dir $@)
	awk '/<!-- example:begin -->/{on=1;next} /<!-- example:end -->/{on=0} on && !/^```/' $< > $@

$(BUILD)/obj/tests/test_readme.o: $(BUILD)/gen/readme_example.c

# The README's complete server, extracted so tests/test_readme.c checks that it is
# apps/keys/main.c word for word (tests/test_keys.c drives that server).
$(BUILD)/gen/readme_server.c: README.md
	@mkdir -p $(dir $@)
	awk '/<!-- server:begin -->/{on=1;next} /<!-- server:end -->/{on=0} on && !/^```/' $< > $@

$(BUILD)/obj/tests/test_readme.o: $(BUILD)/gen/readme_server.c
$(BUILD)/obj/tests/test_readme.o $(BUILD)/obj/tests/test_api_doc.o: \
	TEST_CPPFLAGS += -DSN_SRC_DIR='"$(CURDIR)"' -DSN_GEN_DIR='"$(abspath $(BUILD)/gen)"'
# tests/test_kv_meta.c runs the Python drivers in tests/py/.
$(BUILD)/obj/tests/test_kv_meta.o: TEST_CPPFLAGS += -DSN_SRC_DIR='"$(CURDIR)"'

# The API reference regenerated from the headers; tests/test_api_doc.c compares it with
# docs/API.md (`make api-doc` updates that) and checks the script's thread-contract report.
$(BUILD)/gen/API.md: docs/gen_api.sh include/sn.h $(wildcard include/sn/*.h)
	@mkdir -p $(dir $@)
	sh docs/gen_api.sh --threads $(BUILD)/gen/api_threads.txt > $@.tmp && mv $@.tmp $@

$(BUILD)/tests/test_api_doc: $(BUILD)/gen/API.md

# The cluster test runs apps/kv/cluster/'s configuration files and tests/cluster/'s driver.
$(BUILD)/obj/tests/test_cluster.o: TEST_CPPFLAGS += -DSN_SRC_DIR='"$(CURDIR)"'

api-doc:
	sh docs/gen_api.sh > docs/API.md

# tests/test_cxx.c runs C++ code (tests/cxx_api.cc, compiled with g++ -Werror) that includes
# <sn.h>: the public headers promise C++ (SN_BEGIN_DECLS), and this keeps the promise.
$(BUILD)/tests/test_cxx: TEST_EXTRA_OBJS := $(BUILD)/obj/tests/cxx_api.o
$(BUILD)/tests/test_cxx: $(BUILD)/obj/tests/cxx_api.o

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(SUPPORT_OBJS) $(APPLIB) $(STATIC)
	@mkdir -p $(dir $@)
	$(LINK.sn) -o $@ $< $(TEST_EXTRA_OBJS) $(SUPPORT_OBJS) $(APPLIB) $(STATIC) $(TEST_LIBS) \
		$(TEST_LIBS_$*) $(SN_LDLIBS) $(LDLIBS)

$(BUILD)/tools/%: $(BUILD)/obj/tests/tools/%.o $(STATIC)
	@mkdir -p $(dir $@)
	$(LINK.sn) -o $@ $< $(STATIC) $(SN_LDLIBS) $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(APPLIB) $(STATIC)
	@mkdir -p $(dir $@)
	$(LINK.sn) -o $@ $< $(APPLIB) $(STATIC) $(SN_LDLIBS) -lck $(BENCH_LIBS_$*) $(LDLIBS)

# The check scripts (tests/tools/check_*.sh) get the build folder, the compiler and the
# sanitizer flags of this build, so they build programs the way the tests are built.
test: lib apps tests
	@BUILD=$(BUILD) SAN=$(SAN) CC="$(CC)" SAN_FLAGS="$(SAN_FLAGS)" \
		sh tests/run.sh $(TEST_BINS) $(TEST_SCRIPTS)

asan:
	$(MAKE) BUILD=$(BUILD)-asan SAN=asan test

tsan:
	$(MAKE) BUILD=$(BUILD)-tsan SAN=tsan test

bench: lib apps benches
	@BUILD=$(BUILD) sh bench/run.sh $(BENCH_BINS) $(BENCH_SCRIPTS)

# The report of the newest bench/results/<date>-run.txt, without running anything.
bench-report:
	@sh bench/report.sh

# ---- fuzzing ---------------------------------------------------------------------------------
# Each tests/fuzz/fuzz_<name>.c is a libFuzzer target whose seed corpus is tests/fuzz/<name>/.
# The library and app sources are built again with clang (coverage, ASan, UBSan that aborts) into
# $(FUZZ_BUILD)/; every target runs for FUZZ_SECONDS on a fresh copy of its corpus, so the seeds
# in the tree are never modified. Any crash, leak, UBSan report, timeout (-timeout) or memory
# blow-up (-rss_limit_mb) fails the target; the input is left in $(FUZZ_BUILD)/crash-<name>-*.
# Each run ends with "fuzz: target=<name> execs=N seconds=S" (the figure in docs/RELIABILITY.md).
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_BUILD   ?= $(BUILD)-fuzz
FUZZ_FLAGS   ?= -timeout=10 -rss_limit_mb=2048
FUZZ_CFLAGS  := -g -O1 -std=gnu11 -pthread -fno-omit-frame-pointer \
                -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -Wall -Wextra -Wno-unknown-warning-option
FUZZ_SRCS    := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES   := $(FUZZ_SRCS:tests/fuzz/fuzz_%.c=%)
FUZZ_BINS    := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_DEPLIB  := $(FUZZ_BUILD)/libfuzzdeps.a

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(SN_CPPFLAGS) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_DEPLIB): $(LIB_SRCS:%.c=$(FUZZ_BUILD)/obj/%.o) $(APPLIB_SRCS:%.c=$(FUZZ_BUILD)/obj/%.o)
	rm -f $@ && $(AR) rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_DEPLIB)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(SN_LDLIBS) $(LDLIBS)

fuzz: $(FUZZ_BINS)
	@bad=""; for n in $(FUZZ_NAMES); do \
	  c=$(FUZZ_BUILD)/corpus/$$n; rm -rf $$c; mkdir -p $$c; cp tests/fuzz/$$n/* $$c/; \
	  echo "== fuzz_$$n for $(FUZZ_SECONDS) s"; \
	  if $(FUZZ_BUILD)/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) $(FUZZ_FLAGS) \
	       -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/crash-$$n- $$c \
	       > $(FUZZ_BUILD)/fuzz_$$n.log 2>&1; then \
	    echo "fuzz: target=$$n execs=$$(sed -n 's/^stat::number_of_executed_units: *//p' \
	      $(FUZZ_BUILD)/fuzz_$$n.log) seconds=$(FUZZ_SECONDS) corpus=$$(ls $$c | wc -l)"; \
	  else \
	    tail -n 60 $(FUZZ_BUILD)/fuzz_$$n.log; bad="$$bad $$n"; \
	    echo "fuzz: target=$$n FAILED (inputs: $(FUZZ_BUILD)/crash-$$n-*)"; \
	  fi; \
	done; [ -z "$$bad" ] || { echo "fuzz: failing targets:$$bad"; exit 1; }

# sn.pc is written at install time, not copied: the one in $(BUILD) may hold another PREFIX.
install: lib apps
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCDIR)/sn $(DESTDIR)$(BINDIR)
	install -m 644 include/sn.h $(DESTDIR)$(INCDIR)/sn.h
	install -m 644 include/sn/*.h $(DESTDIR)$(INCDIR)/sn/
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/libsn.a
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/libsn.so.$(VERSION)
	ln -sf libsn.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libsn.so.$(SOVERSION)
	ln -sf libsn.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libsn.so
	sed -e '$(PC_SUBST)' sn.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/sn.pc
	chmod 644 $(DESTDIR)$(LIBDIR)/pkgconfig/sn.pc
	$(if $(APP_BINS),install -m 755 $(APP_BINS) $(DESTDIR)$(BINDIR)/)

uninstall:
	rm -f $(DESTDIR)$(INCDIR)/sn.h $(DESTDIR)$(LIBDIR)/libsn.a $(DESTDIR)$(LIBDIR)/libsn.so*
	rm -rf $(DESTDIR)$(INCDIR)/sn
	rm -f $(DESTDIR)$(LIBDIR)/pkgconfig/sn.pc
	rm -f $(APP_NAMES:%=$(DESTDIR)$(BINDIR)/sn-%)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

# The build folder and its sanitizer and fuzzing siblings; other BUILD= folders stay.
clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-tsan $(FUZZ_BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
-include $(shell find $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)
