# vine - see README.  Targets: all install check demo bench clean.
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
VCFLAGS = -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -pthread -Ilib \
	-Wall -Wextra -Wshadow -Wno-unused-parameter $(PKG_CFLAGS)
VLDLIBS = $(PKG_LIBS) -pthread

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

$(O)/cmd $(O)/bin $(O)/tests:
	mkdir -p $@

units: $(UNITS)

deps:
	sh share/install-deps.sh build

deps-check:
	sh share/install-deps.sh check

deps-demo:
	sh share/install-deps.sh demo

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
	rm -rf build build-san

.PHONY: all units deps deps-check deps-demo check demo bench install lint-man clean
.DELETE_ON_ERROR:
