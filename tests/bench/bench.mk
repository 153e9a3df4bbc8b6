# tests/bench/bench.mk: optional glue for the top-level Makefile
# (`include tests/bench/bench.mk` after WARN, LIB and CC are defined).
# tests/bench/run builds both programs itself when they are missing or stale;
# these rules only build them with the project's flags and add two targets.
BENCH_DIR := tests/bench
SIOBENCH := $(BENCH_DIR)/.build/siobench

$(SIOBENCH): $(BENCH_DIR)/siobench.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) -std=gnu11 -O2 -g $(WARN) -o $@ $< -pthread

.PHONY: bench-build bench-quick bench-clean
bench-build: $(SIOBENCH)
bench-quick: all bench-build
	@$(BENCH_DIR)/run --quick
bench-clean:
	rm -rf $(BENCH_DIR)/.build
