# shared-nothing (libsn) build. GNU make only.
#
#   make            build libsn.a, libsn.so.0, sn.pc, the sample apps, tests and benchmarks
#   make test       build and run every Criterion test (tests/test_*.c)
#   make asan       the whole test suite under AddressSanitizer + UBSan ($(BUILD)-asan/)
#   make tsan       the whole test suite under ThreadSanitizer ($(BUILD)-tsan/, Criterion shim)
#   BUILD=dir       build somewhere else than build/ (e.g. one folder per concurrent job)
#   make bench      build and run the benchmarks (bench/bench_*.c)
#   make deps       install the Debian packages the project needs
#   make install / uninstall   honour PREFIX and DESTDIR
#
# Sources are discovered by wildcard, so adding a file needs no Makefile change:
#   core/*.c partition/*.c reactor/*.c        -> libsn
#   apps/<name>/*.c except main.c             -> build/libsnapps.a (app logic that tests link)
#   apps/<name>/main.c                        -> build/bin/sn-<name>
#   tests/test_*.c                            -> build/tests/test_* (Criterion)
#   tests/support/*.c                         -> linked into every test
#   bench/bench_*.c                           -> build/bench/bench_*

BUILD     ?= build
SAN       ?=
PREFIX    ?= /usr/local
LIBDIR    ?= $(PREFIX)/lib
INCDIR    ?= $(PREFIX)/include
BINDIR    ?= $(PREFIX)/bin
CC        ?= cc
VERSION   := 0.1.0
SOVERSION := 0

PKGS      := liburing hwloc libxxhash
WARN      := -Wall -Wextra -Wstrict-prototypes -Wshadow
ifeq ($(CI),true)
WARN      += -Werror
endif
OPT       ?= -O2
CPPFLAGS  += -Iinclude -I. -D_GNU_SOURCE
CFLAGS    ?= -g
CFLAGS    += -std=gnu11 $(OPT) $(WARN) -fPIC -fvisibility=hidden -pthread
LDLIBS    += $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -luring -lhwloc -lxxhash) -lpthread -lm

TEST_LIBS := -lcriterion
ifeq ($(SAN),asan)
OPT       := -O1
CFLAGS    += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS   += -fsanitize=address,undefined
endif
ifeq ($(SAN),tsan)
# Criterion aborts under TSan (Snaipe/Criterion#274), so tests build against a small
# source-compatible shim that runs every Test() in one process.
OPT       := -O1
CFLAGS    += -fsanitize=thread -fno-omit-frame-pointer -Wno-tsan
LDFLAGS   += -fsanitize=thread
TEST_CPPFLAGS := -Itests/shim
TEST_LIBS :=
TEST_SHIM := tests/shim/shim.c
endif

LIB_SRCS   := $(sort $(wildcard core/*.c partition/*.c reactor/*.c))
LIB_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
APP_DIRS   := $(sort $(dir $(wildcard apps/*/main.c)))
APP_NAMES  := $(patsubst apps/%/,%,$(APP_DIRS))
APPLIB_SRCS:= $(filter-out %/main.c,$(sort $(wildcard apps/*/*.c)))
APPLIB_OBJS:= $(APPLIB_SRCS:%.c=$(BUILD)/obj/%.o)
APP_BINS   := $(APP_NAMES:%=$(BUILD)/bin/sn-%)
# TESTS="test_ring test_mesh" limits the test build and run to those files.
TEST_SRCS  := $(if $(TESTS),$(TESTS:%=tests/%.c),$(sort $(wildcard tests/test_*.c)))
TEST_BINS  := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
SUPPORT_SRCS := $(sort $(wildcard tests/support/*.c)) $(TEST_SHIM)
SUPPORT_OBJS := $(SUPPORT_SRCS:%.c=$(BUILD)/obj/%.o)
# BENCHES="bench_ring" limits the benchmark build and run likewise.
BENCH_SRCS := $(if $(BENCHES),$(BENCHES:%=bench/%.c),$(sort $(wildcard bench/bench_*.c)))
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)
TOOL_SRCS  := $(sort $(wildcard tests/tools/*.c))
TOOL_BINS  := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tools/%)

STATIC    := $(BUILD)/libsn.a
SHARED    := $(BUILD)/libsn.so.$(VERSION)
APPLIB    := $(BUILD)/libsnapps.a
PC        := $(BUILD)/sn.pc

.SECONDARY:
.PHONY: all lib apps tests benches test asan tsan bench deps install uninstall clean format check-deps

all: lib apps tests benches

lib: check-deps $(STATIC) $(SHARED) $(PC)
apps: $(APP_BINS)
tests: $(TEST_BINS) $(TOOL_BINS)
benches: $(BENCH_BINS)

check-deps:
	@sh .ci/deps.sh --check

deps:
	@sh .ci/deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CPPFLAGS) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(STATIC): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

$(SHARED): $(LIB_OBJS)
	$(CC) -shared -Wl,-soname,libsn.so.$(SOVERSION) $(LDFLAGS) -o $@ $^ $(LDLIBS)
	ln -sf libsn.so.$(VERSION) $(BUILD)/libsn.so.$(SOVERSION)
	ln -sf libsn.so.$(SOVERSION) $(BUILD)/libsn.so

$(PC): sn.pc.in Makefile
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCDIR@|$(INCDIR)|; s|@VERSION@|$(VERSION)|' $< > $@

$(APPLIB): $(APPLIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/bin/sn-%: $(BUILD)/obj/apps/%/main.o $(APPLIB) $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(APPLIB) $(STATIC) $(LDLIBS)

# The README's API tour, extracted so tests/test_readme.c compiles it.
$(BUILD)/gen/readme_tour.inc: README.md
	@mkdir -p $(dir $@)
	awk '/<!-- tour:begin -->/{on=1;next} /<!-- tour:end -->/{on=0} on && !/^```/' $< > $@

$(BUILD)/obj/tests/test_readme.o: $(BUILD)/gen/readme_tour.inc
$(BUILD)/obj/tests/test_readme.o: TEST_CPPFLAGS += -I$(BUILD)/gen

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(SUPPORT_OBJS) $(APPLIB) $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(SUPPORT_OBJS) $(APPLIB) $(STATIC) $(TEST_LIBS) $(LDLIBS)

$(BUILD)/tools/%: $(BUILD)/obj/tests/tools/%.o $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(STATIC) $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(APPLIB) $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(APPLIB) $(STATIC) $(LDLIBS) -lck

test: lib apps tests
	@BUILD=$(BUILD) SAN=$(SAN) sh tests/run.sh $(TEST_BINS)

asan:
	$(MAKE) BUILD=$(BUILD)-asan SAN=asan test

tsan:
	$(MAKE) BUILD=$(BUILD)-tsan SAN=tsan test

bench: lib apps benches
	@BUILD=$(BUILD) sh bench/run.sh $(BENCH_BINS)

install: lib apps
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCDIR)/sn $(DESTDIR)$(BINDIR)
	install -m 644 include/sn.h $(DESTDIR)$(INCDIR)/sn.h
	install -m 644 include/sn/*.h $(DESTDIR)$(INCDIR)/sn/
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/libsn.a
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/libsn.so.$(VERSION)
	ln -sf libsn.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libsn.so.$(SOVERSION)
	ln -sf libsn.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libsn.so
	install -m 644 $(PC) $(DESTDIR)$(LIBDIR)/pkgconfig/sn.pc
	$(if $(APP_BINS),install -m 755 $(APP_BINS) $(DESTDIR)$(BINDIR)/)

uninstall:
	rm -f $(DESTDIR)$(INCDIR)/sn.h $(DESTDIR)$(LIBDIR)/libsn.a $(DESTDIR)$(LIBDIR)/libsn.so*
	rm -rf $(DESTDIR)$(INCDIR)/sn
	rm -f $(DESTDIR)$(LIBDIR)/pkgconfig/sn.pc
	rm -f $(APP_NAMES:%=$(DESTDIR)$(BINDIR)/sn-%)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-tsan build-*

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
