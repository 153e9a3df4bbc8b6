# Socket.IO server in C: stated (state daemon), sio-fcgi (FastCGI polling
# gateway), sio-front (WebSocket + embedded front), sioctl (command line).
#
#   make            install missing packages, build into bin/
#   make run        build and start the embedded default on 127.0.0.1:$(PORT)
#   make test       build and run every test (unit, fuzz smoke, integration)
#   make asan       build the ASan/UBSan variant into build/asan/bin/
#   make test-asan  run the whole suite against the ASan/UBSan build
#   make fuzz       run every libFuzzer driver for FUZZ_SECONDS each
#   make bench      side-by-side benchmarks against the Node reference (bench-quick: a 2-minute smoke run)
#   make soak       10k clients with connection state recovery, churn and a stream for an hour
#                   (SOAK_MINUTES=N to bound it; see tests/soak/run): loss and memory over time
#   make install    copy the programs to $(PREFIX)/bin

PREFIX ?= /usr/local
PORT ?= 3000
FUZZ_SECONDS ?= 20

CC ?= cc
PKGS := libcjson lmdb fcgi libwebsockets
WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral
BASE_CFLAGS := -std=gnu11 -D_GNU_SOURCE -g $(WARN) -Ishared
LDLIBS := -lcjson -llmdb -lhiredis -lmsgpackc -lpthread -lm -ldl
# The hosts of plugins (sio-fcgi, sio-front) export their symbols (sioh_*).
HOST_LDFLAGS := -rdynamic

ifeq ($(MODE),asan)
OUT := build/asan
OPT := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
else
MODE := release
OUT := build/release
OPT := -O2
endif
BINDIR := $(if $(filter asan,$(MODE)),$(OUT)/bin,bin)
CFLAGS_ALL = $(BASE_CFLAGS) $(OPT) $(CFLAGS)
LDFLAGS_ALL = $(OPT) $(LDFLAGS)

SHARED_SRC := $(wildcard shared/*/*.c)
SHARED_OBJ := $(SHARED_SRC:%.c=$(OUT)/%.o)
LIB := $(OUT)/libsio.a

PROGS := $(BINDIR)/stated $(BINDIR)/sioctl $(BINDIR)/sio-fcgi $(BINDIR)/sio-example-echo \
         $(BINDIR)/sio-example-echo-plugin.so
ifneq ($(wildcard gateway/front.c),)
PROGS += $(BINDIR)/sio-front
endif
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(OUT)/tests/%)

.PHONY: all deps build run test test-asan asan unit fuzz bench soak install clean
all: deps build

deps:
	@scripts/install-deps

build: $(PROGS) $(UNIT_BIN)

$(OUT)/%.o: %.c $(wildcard shared/*/*.h) $(wildcard gateway/*.h) $(wildcard stated/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(LIB): $(SHARED_OBJ)
	@rm -f $@
	@ar rcs $@ $^

$(BINDIR)/stated: $(patsubst %.c,$(OUT)/%.o,$(wildcard stated/*.c)) $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	@$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS)

$(BINDIR)/sioctl: $(patsubst %.c,$(OUT)/%.o,$(wildcard sioctl/*.c)) $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	@$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS)

$(BINDIR)/sio-fcgi: $(OUT)/gateway/fcgi.o $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	@$(CC) $(LDFLAGS_ALL) $(HOST_LDFLAGS) -o $@ $^ -lfcgi $(LDLIBS)

$(BINDIR)/sio-front: $(patsubst %.c,$(OUT)/%.o,$(wildcard gateway/front*.c)) $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	@$(CC) $(LDFLAGS_ALL) $(HOST_LDFLAGS) -o $@ $^ -lwebsockets $(LDLIBS)

# The C handler example (scripts/examples/echo.c): the conformance and bench configs use it.
# Handlers include "sioh.h" as users' code does (-Ishared/handlers).
$(OUT)/scripts/examples/echo.o: CFLAGS += -Ishared/handlers
$(BINDIR)/sio-example-echo: $(OUT)/scripts/examples/echo.o $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	@$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS)

# The plugin example (scripts/examples/echo_plugin.c): the bench config uses it.
$(BINDIR)/sio-example-echo-plugin.so: scripts/examples/echo_plugin.c shared/handlers/sioh.h
	@mkdir -p $(dir $@)
	@echo "  SO      $@"
	@$(CC) $(CFLAGS_ALL) -Ishared/handlers -shared -fPIC $(LDFLAGS_ALL) -o $@ $<

$(OUT)/tests/%: tests/unit/%.c tests/unit/unit.h $(LIB)
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	@$(CC) $(CFLAGS_ALL) -Itests/unit $(LDFLAGS_ALL) -o $@ $< $(LIB) $(LDLIBS)

# test_room includes stated/room.c (it tests stated's code without its main).
$(OUT)/tests/test_room: stated/room.c stated/room.h

unit: deps build
	@tests/run-unit $(OUT)/tests

asan:
	@$(MAKE) --no-print-directory MODE=asan build

run: all
	PORT=$(PORT) scripts/run-embedded

test: all
	@tests/run

test-asan: deps
	@$(MAKE) --no-print-directory MODE=asan build
	@SIO_BIN=$(CURDIR)/build/asan/bin SIO_UNIT=$(CURDIR)/build/asan/tests SIO_TIME_SCALE=3 tests/run

fuzz: deps
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run

bench: all
	@tests/bench/run

soak: all
	@tests/soak/run

include tests/bench/bench.mk

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(PROGS) $(DESTDIR)$(PREFIX)/bin/

clean:
	rm -rf build bin tests/bench/.build
