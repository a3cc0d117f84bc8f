# sfengine build. `make test` and `make demo` are the only commands a fresh
# Debian machine needs: both install missing packages first (make deps).
CC      ?= cc
PKGS    := lua5.4 libcurl openssl sqlite3 zlib
OPT     ?= -O2
CFLAGS  := -std=c11 -Wall -Wextra -Werror $(OPT) -g -D_GNU_SOURCE \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(EXTRA_CFLAGS)
LDLIBS  := -l:liblua5.4-cjson.a $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm $(EXTRA_LDLIBS)
BUILD   ?= build
BIN     ?= sfengine

ENGINE_SRC := $(wildcard engine/*.c)
ENGINE_OBJ := $(patsubst engine/%.c,$(BUILD)/%.o,$(ENGINE_SRC))
# Lua runtime library and default mappings are compiled into the binary.
EMBEDDED   := $(sort $(wildcard scripts/sf/*.lua scripts/sf/*/*.lua mappings/*.lua))

DEB_PACKAGES := build-essential pkg-config liblua5.4-dev lua-cjson-dev \
                libcurl4-openssl-dev libssl-dev libsqlite3-dev zlib1g-dev python3 openssl \
                ca-certificates curl tzdata chromium

.PHONY: all deps test asan demo bench clean
all: $(BIN)

deps:
	@sh tests/deps.sh $(DEB_PACKAGES)

$(BUILD):
	@mkdir -p $(BUILD)

$(BUILD)/%.o: engine/%.c $(wildcard engine/*.h) | $(BUILD)
	$(CC) $(CFLAGS) -iquote engine -c $< -o $@

$(BUILD)/embedded.c: $(EMBEDDED) $(ENGINE_SRC) engine/embed.py | $(BUILD)
	python3 engine/embed.py $@ $(EMBEDDED) $(ENGINE_SRC)

$(BUILD)/embedded.o: $(BUILD)/embedded.c
	$(CC) $(CFLAGS) -iquote engine -c $< -o $@

$(BIN): $(ENGINE_OBJ) $(BUILD)/embedded.o
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

test: deps
	@$(MAKE) --no-print-directory $(BIN)
	@sh tests/run.sh

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer.
asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan BIN=sfengine-asan OPT=-O1 \
	  EXTRA_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	  EXTRA_LDLIBS="-fsanitize=address,undefined" sfengine-asan
	@SFENGINE=./sfengine-asan SANITIZE=1 ASAN_OPTIONS=detect_leaks=1 sh tests/run.sh

demo: deps
	@$(MAKE) --no-print-directory $(BIN)
	@sh examples/demo.sh

bench: deps
	@$(MAKE) --no-print-directory $(BIN)
	@sh bench/run.sh

clean:
	rm -rf build build-asan sfengine sfengine-asan tests/.out

# C unit tests link every engine object except main.o.
TEST_OBJ := $(filter-out $(BUILD)/main.o,$(ENGINE_OBJ)) $(BUILD)/embedded.o
$(BUILD)/tests/%: tests/c/%.c tests/c/tap.h $(TEST_OBJ)
	@mkdir -p $(BUILD)/tests
	$(CC) $(CFLAGS) -iquote engine -Itests/c -o $@ $< $(TEST_OBJ) $(LDLIBS)
