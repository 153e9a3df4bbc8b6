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
#   make install    install the programs, the C API (libsio.a, sioh.h, sio.pc), www/, the
#                   client bundle, the Admin UI, the run scripts, examples and the systemd units under
#                   $(DESTDIR)$(PREFIX) (README "Production"); make uninstall removes them

PREFIX ?= /usr/local
# Where `make install` puts what lives outside PREFIX (under DESTDIR too).
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
SIO_VERSION := 0.1
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

.PHONY: all deps build run test test-asan asan unit fuzz bench soak install uninstall clean
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
	@$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS) -lcrypt

$(BINDIR)/sioctl: $(patsubst %.c,$(OUT)/%.o,$(wildcard sioctl/*.c)) $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	@$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS)

$(BINDIR)/sio-fcgi: $(OUT)/gateway/fcgi.o $(OUT)/gateway/fcgi_park.o $(LIB)
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

# The installed layout (see shared/base/paths.h: programs in PREFIX/bin find
# PREFIX/share/sio/www, so keep them together). MODE=asan installs the ASan build.
I := $(DESTDIR)$(PREFIX)
SHARE := $(I)/share/sio
CLIENT_DIST := tests/node_modules/socket.io-client/dist
ADMIN_UI_DIST := tests/node_modules/@socket.io/admin-ui/ui/dist
UNITS := sio-stated.service sio-front.service sio-fcgi.socket sio-fcgi.service
RECIPES := nginx.conf.example apache-proxy-fcgi.conf.example
EXAMPLES := README.md echo.c echo_plugin.c echo.conf seed.conf jget
SUBST := sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@BINDIR@|$(PREFIX)/bin|g' \
             -e 's|@DATADIR@|$(PREFIX)/share/sio|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
             -e 's|@VERSION@|$(SIO_VERSION)|g'

install: build
	@test -r $(CLIENT_DIST)/socket.io.min.js || \
	    { echo "make install: $(CLIENT_DIST)/socket.io.min.js missing (scripts/install-deps installs it)" >&2; exit 1; }
	@test -r $(ADMIN_UI_DIST)/index.html || \
	    { echo "make install: $(ADMIN_UI_DIST)/index.html missing (scripts/install-deps installs it)" >&2; exit 1; }
	install -d $(I)/bin $(I)/lib/sio $(I)/lib/pkgconfig $(I)/include/sio $(SHARE)/www \
	    $(SHARE)/client $(SHARE)/scripts/conf $(SHARE)/examples/handlers $(SHARE)/logrotate \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(SYSCONFDIR)/sio
	install -m 755 $(filter-out %.so,$(PROGS)) $(I)/bin/
	install -m 755 $(BINDIR)/sio-example-echo-plugin.so $(I)/lib/sio/
	install -m 644 $(LIB) $(I)/lib/libsio.a
	install -m 644 shared/handlers/sioh.h $(I)/include/sio/
	$(SUBST) scripts/conf/sio.pc.in >$(I)/lib/pkgconfig/sio.pc
	install -m 644 www/* $(SHARE)/www/
	install -m 644 $(CLIENT_DIST)/socket.io.min.js $(CLIENT_DIST)/socket.io.min.js.map $(SHARE)/client/
	@# The Admin UI (served at /admin-ui/ when the config has [admin]); no source maps.
	rm -rf $(SHARE)/admin-ui
	install -d $(SHARE)/admin-ui/css $(SHARE)/admin-ui/js $(SHARE)/admin-ui/img
	install -m 644 $(ADMIN_UI_DIST)/index.html $(ADMIN_UI_DIST)/favicon.png $(SHARE)/admin-ui/
	install -m 644 $(ADMIN_UI_DIST)/css/* $(SHARE)/admin-ui/css/
	install -m 644 $(filter-out %.map,$(wildcard $(ADMIN_UI_DIST)/js/*)) $(SHARE)/admin-ui/js/
	install -m 644 $(ADMIN_UI_DIST)/img/* $(SHARE)/admin-ui/img/
	install -m 755 scripts/run-embedded scripts/run-lighttpd scripts/run-apache $(SHARE)/scripts/
	install -m 644 scripts/lib-run.sh $(SHARE)/scripts/
	install -m 644 scripts/conf/lighttpd.conf.in scripts/conf/apache.conf.in scripts/conf/sio.conf.example $(SHARE)/scripts/conf/
	@# The web-server recipes name the installed files (/usr/local/share/sio as shipped).
	for r in $(RECIPES); do \
	    sed 's|/usr/local/share/sio|$(PREFIX)/share/sio|g' scripts/conf/$$r >$(SHARE)/scripts/conf/$$r || exit 1; done
	install -m 644 $(addprefix scripts/examples/,$(EXAMPLES)) scripts/conf/sio.conf.example $(SHARE)/examples/
	install -m 755 scripts/examples/handlers/*.sh $(SHARE)/examples/handlers/
	install -m 644 scripts/conf/sio.logrotate $(SHARE)/logrotate/sio
	install -m 644 README.md $(SHARE)/README.md
	for u in $(UNITS); do $(SUBST) scripts/systemd/$$u.in >$(DESTDIR)$(UNITDIR)/$$u || exit 1; done
	install -m 644 scripts/systemd/sio.sysusers $(DESTDIR)$(SYSUSERSDIR)/sio.conf
	@# The config is the administrator's: installed once, never overwritten.
	test -e $(DESTDIR)$(SYSCONFDIR)/sio/sio.conf || \
	    install -m 644 scripts/conf/sio.conf.example $(DESTDIR)$(SYSCONFDIR)/sio/sio.conf

# Removes what install put in place, except the config (SYSCONFDIR/sio/sio.conf)
# and the state (/var/lib/sio).
uninstall:
	rm -f $(addprefix $(I)/bin/,$(notdir $(filter-out %.so,$(PROGS))))
	rm -rf $(I)/lib/sio $(I)/include/sio $(SHARE)
	rm -f $(I)/lib/libsio.a $(I)/lib/pkgconfig/sio.pc
	rm -f $(addprefix $(DESTDIR)$(UNITDIR)/,$(UNITS)) $(DESTDIR)$(SYSUSERSDIR)/sio.conf

clean:
	rm -rf build bin tests/bench/.build
