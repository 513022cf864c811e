# vine - see README.  Targets: all install check demo bench fuzz clean.
# Switches: DEVELOPER=1 (warnings are errors), SANITIZE=address,undefined.

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
SHAREDIR ?= $(PREFIX)/share/vine
DESTDIR ?=

PKGS = libarchive libssh2 zlib sqlite3 libcrypto jansson libdeflate
CC ?= cc
CFLAGS ?= -O2 -g
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
VBASE = -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -pthread -Ilib \
	-Wall -Wextra -Wshadow -Wno-unused-parameter $(PKG_CFLAGS)
VCFLAGS = $(VBASE)
VLDLIBS = $(PKG_LIBS) -pthread -lm

ifeq ($(DEVELOPER),1)
VCFLAGS += -Werror -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes
endif
ifneq ($(SANITIZE),)
VCFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
VLDLIBS += -fsanitize=$(SANITIZE)
endif

# Sanitized objects live apart so the two builds never mix.
O ?= build$(if $(SANITIZE),-san)

# lib/ has one folder per subsystem (see vine(7)); cmd/cli.c holds what only
# the programs share (messages, option parsing) and is not part of libvine.
LIB_SRC := $(sort $(wildcard lib/*/*.c))
LIB_OBJ := $(LIB_SRC:lib/%.c=$(O)/lib/%.o)
LIB_HDR := $(wildcard lib/*/*.h)
CMDS := $(sort $(patsubst cmd/%.c,%,$(wildcard cmd/vine-*.c)))
CLI_OBJ := $(O)/cmd/cli.o
BINS := $(CMDS:%=$(O)/bin/%)
UNIT_SRC := $(sort $(wildcard tests/unit/test-*.c))
UNITS := $(UNIT_SRC:tests/unit/%.c=$(O)/tests/%)
MANS := $(wildcard man/*.1 man/*.7)
# Fuzz harnesses (tests/fuzz/README): for make check each is linked with a
# plain main that runs it once over its corpus; make fuzz builds them with
# clang and libFuzzer in build-fuzz/.
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz-*.c))
FUZZ_NAMES := $(FUZZ_SRC:tests/fuzz/%.c=%)
FUZZ_COMMON := tests/fuzz/fuzz.c tests/fuzz/peer-fuzz.c
FUZZ_HDR := tests/fuzz/fuzz.h tests/fuzz/peer-fuzz.h
FUZZ_REG := $(FUZZ_NAMES:%=$(O)/fuzz/%)

all: $(BINS)

$(O)/lib/%.o: lib/%.c $(LIB_HDR)
	@mkdir -p $(@D)
	$(CC) $(VCFLAGS) $(CFLAGS) $(CPPFLAGS) -c -o $@ $<

$(O)/libvine.a: $(LIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $^

$(CLI_OBJ): cmd/cli.c cmd/cli.h $(LIB_HDR) | $(O)/cmd
	$(CC) $(VCFLAGS) $(CFLAGS) $(CPPFLAGS) -c -o $@ $<

$(BINS): $(O)/bin/%: cmd/%.c cmd/cli.h $(CLI_OBJ) $(O)/libvine.a $(LIB_HDR) | $(O)/bin
	$(CC) $(VCFLAGS) $(CFLAGS) $(CPPFLAGS) $(LDFLAGS) -o $@ $< $(CLI_OBJ) $(O)/libvine.a $(VLDLIBS)

$(UNITS): $(O)/tests/%: tests/unit/%.c tests/unit/t.h $(O)/libvine.a | $(O)/tests
	$(CC) $(VCFLAGS) $(CFLAGS) $(CPPFLAGS) $(LDFLAGS) -o $@ $< $(O)/libvine.a $(VLDLIBS)

$(FUZZ_REG): $(O)/fuzz/%: tests/fuzz/%.c tests/fuzz/driver.c $(FUZZ_COMMON) $(FUZZ_HDR) $(O)/libvine.a | $(O)/fuzz
	$(CC) $(VCFLAGS) $(CFLAGS) $(CPPFLAGS) $(LDFLAGS) -o $@ $< tests/fuzz/driver.c $(FUZZ_COMMON) \
		$(O)/libvine.a $(VLDLIBS)

$(O)/cmd $(O)/bin $(O)/tests $(O)/fuzz:
	mkdir -p $@

units: $(UNITS) $(FUZZ_REG)

# make fuzz [FUZZ_SECONDS=N] [FUZZ_TARGETS='fuzz-x ...'] [FUZZ_FLAGS=...]:
# build the harnesses with libFuzzer and the sanitizers, then run each in
# turn for N seconds from its seed corpus (tests/fuzz/corpus/NAME) and
# dictionary; what it finds goes to build-fuzz/corpus/NAME, crashes to
# build-fuzz/crash-NAME-*.  make fuzz-build only builds.
FUZZ_CC ?= clang
FUZZ_O := build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= $(FUZZ_NAMES)
FUZZ_FLAGS ?=
FUZZ_CFLAGS = $(VBASE) -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=all
FUZZ_LIB_OBJ := $(LIB_SRC:lib/%.c=$(FUZZ_O)/lib/%.o)
FUZZ_BINS := $(FUZZ_NAMES:%=$(FUZZ_O)/%)

$(FUZZ_O)/lib/%.o: lib/%.c $(LIB_HDR)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_O)/libvine.a: $(FUZZ_LIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $^

$(FUZZ_BINS): $(FUZZ_O)/%: tests/fuzz/%.c $(FUZZ_COMMON) $(FUZZ_HDR) $(FUZZ_O)/libvine.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_COMMON) $(FUZZ_O)/libvine.a $(VLDLIBS)

fuzz-build: deps-fuzz
	$(MAKE) $(FUZZ_BINS)

fuzz: fuzz-build
	@for h in $(FUZZ_TARGETS); do \
		n=$${h#fuzz-}; \
		mkdir -p $(FUZZ_O)/corpus/$$h || exit 1; \
		d=; [ -f tests/fuzz/$$n.dict ] && d=-dict=tests/fuzz/$$n.dict; \
		echo "fuzz: $$h for $(FUZZ_SECONDS) s"; \
		$(FUZZ_O)/$$h -max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=3072 \
			-artifact_prefix=$(FUZZ_O)/crash-$$h- -print_final_stats=1 $$d $(FUZZ_FLAGS) \
			$(FUZZ_O)/corpus/$$h tests/fuzz/corpus/$$n || exit 1; \
	done

deps:
	sh share/install-deps.sh build

deps-check:
	sh share/install-deps.sh check

deps-demo:
	sh share/install-deps.sh demo

deps-fuzz:
	sh share/install-deps.sh fuzz

# make check: install what the tests need, build, run every test.
check: deps-check
	$(MAKE) all units
	VINE_BIN=$(CURDIR)/$(O)/bin VINE_UNITS=$(CURDIR)/$(O)/tests sh tests/run $(TESTS)

demo: deps-demo
	$(MAKE) all
	VINE_BIN=$(CURDIR)/$(O)/bin sh share/demo.sh

bench: all
	VINE_BIN=$(CURDIR)/$(O)/bin sh bench/run.sh

install: all
	mkdir -p $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(SHAREDIR)
	cp $(BINS) $(DESTDIR)$(BINDIR)/
	for m in $(MANS); do s=$${m##*.}; cp $$m $(DESTDIR)$(MANDIR)/man$$s/; done
	cp -R share/. $(DESTDIR)$(SHAREDIR)/

lint-man:
	mandoc -Tlint -W warning $(MANS)

clean:
	rm -rf build build-san build-fuzz

.PHONY: all units deps deps-check deps-demo deps-fuzz check demo bench fuzz fuzz-build install lint-man clean
.DELETE_ON_ERROR:
