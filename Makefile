# citybrain — the one entry point: make, make run, make test, make asan, make fuzz, make bench.
# No configure step: the libraries come from Debian (scripts/deps.sh installs them).

CC       ?= cc
BUILD    ?= build/release
OPT      ?= -O2
SAN      ?=
VERSION  := 0.1.0
COMMIT   := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
PKGS     := libmicrohttpd jansson sqlite3 libsodium libmosquitto geos libcurl

CFLAGS   := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g $(OPT) $(SAN) \
            -Isrc -MMD -MP -DCB_VERSION='"$(VERSION)"' -DCB_COMMIT='"$(COMMIT)"'
LDLIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lmicrohttpd -ljansson -lsqlite3 -lsodium -lmosquitto -lgeos_c -lcurl) -lpthread -lm
LDFLAGS  := $(SAN)

LIB_SRC  := $(sort $(wildcard src/*/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
REPLAY_BIN := $(FUZZ_SRC:fuzz/%.c=$(BUILD)/replay/%)
# citysim talks to citybrain over its public interfaces only: none of src/.
SIM_SRC  := $(sort $(wildcard tools/citysim/*.c))
SIM_OBJ  := $(SIM_SRC:%.c=$(BUILD)/%.o)
SIM_LIBS := $(shell pkg-config --libs jansson libmosquitto 2>/dev/null || echo -ljansson -lmosquitto) -lm

.PHONY: all deps run test unit valgrind replay integration browser asan fuzz bench clean
all: citybrain citysim

deps:
	@scripts/deps.sh

citybrain: $(BUILD)/citybrain
	cp $< $@

$(BUILD)/citybrain: $(BUILD)/src/main.o $(BUILD)/libcitybrain.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

citysim: $(BUILD)/citysim
	cp $< $@

$(BUILD)/citysim: $(SIM_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(SIM_LIBS)

$(BUILD)/libcitybrain.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libcitybrain.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(BUILD)/libcitybrain.a $(LDLIBS)

# Fuzz targets built with a plain main() that replays the stored corpus.
$(BUILD)/replay/%: fuzz/%.c fuzz/replay.c $(BUILD)/libcitybrain.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< fuzz/replay.c $(BUILD)/libcitybrain.a $(LDLIBS)

run: deps citybrain citysim
	scripts/run-demo.sh

test: deps
	$(MAKE) citybrain citysim
	$(MAKE) unit valgrind replay integration browser

unit: $(UNIT_BIN)
	scripts/run-unit.sh $(UNIT_BIN)

valgrind: $(UNIT_BIN)
	VALGRIND=1 scripts/run-unit.sh $(UNIT_BIN)

replay: $(REPLAY_BIN)
	@for t in $(REPLAY_BIN); do n=$$(basename $$t); \
	  $$t fuzz/corpus/$$n/* || exit 1; done

integration: $(BUILD)/citybrain $(BUILD)/citysim
	CITYBRAIN_BIN=$(abspath $(BUILD)/citybrain) CITYSIM_BIN=$(abspath $(BUILD)/citysim) python3 -m unittest discover -s tests/integration -p 'test_*.py' -v

# The dashboard and citizen page in headless Chromium (playwright-core);
# screenshots in build/browser-artifacts/.
browser: $(BUILD)/citybrain $(BUILD)/citysim
	CITYBRAIN_BIN=$(abspath $(BUILD)/citybrain) CITYSIM_BIN=$(abspath $(BUILD)/citysim) node --test tests/browser/

# AddressSanitizer + UBSan over the whole suite. A small quarantine: ASan otherwise
# holds 256 MB of freed memory, which the memory-bound backpressure test would count.
ASAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
asan: deps
	$(MAKE) BUILD=build/asan OPT=-O1 SAN="$(ASAN_FLAGS)" build/asan/citybrain
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:quarantine_size_mb=16 UBSAN_OPTIONS=print_stacktrace=1 \
	  $(MAKE) BUILD=build/asan OPT=-O1 SAN="$(ASAN_FLAGS)" unit replay integration

# libFuzzer (clang) over every parser; FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 60
fuzz: deps
	$(MAKE) CC=clang BUILD=build/fuzz OPT=-O1 SAN="-fsanitize=fuzzer-no-link,address,undefined" build/fuzz/libcitybrain.a
	@mkdir -p build/fuzz/bin
	@for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	  clang -std=c11 -D_GNU_SOURCE -g -O1 -Isrc -fsanitize=fuzzer,address,undefined \
	    -o build/fuzz/bin/$$n $$f build/fuzz/libcitybrain.a $(LDLIBS) || exit 1; \
	  mkdir -p fuzz/corpus/$$n; \
	  build/fuzz/bin/$$n -max_total_time=$(FUZZ_SECONDS) fuzz/corpus/$$n || exit 1; done

bench: deps citybrain
	@for b in bench/*.sh; do "$$b" || exit 1; done

clean:
	rm -rf build citybrain citysim

-include $(shell find build -name '*.d' 2>/dev/null)
