# resnet-dist: non-recursive build. Objects in build/, automatic header
# dependencies, one static library that every tool and test links.
#   make            build the tools          make test    build and run every test
#   make test-multinode  the Slurm tests across 3 nodes (root, ~3 min)
#   make run        train the default model  make bench   benchmarks vs PyTorch
#   make fuzz       fuzz the tools (FUZZ_CASES=, FUZZ_SEED=; docs/reliability.md)
#   make fuzz-image libFuzzer on the JPEG/PNG decoder (FUZZ_SECONDS=)
#   make install PREFIX=/opt/resnet-dist [DESTDIR=/stage]     make config  what was found
#   V=1 verbose  SANITIZE=address,undefined  ARCH=native (or any -march value; default portable)
# Off Debian (docs/install.md): MPICC, DNNL_ROOT, HDF5_ROOT, JPEG_ROOT, PNG_ROOT say where
# things are; NO_INSTALL=1 skips the package step of make run/test/bench.
# CFLAGS=, LDFLAGS= and LDLIBS= on the command line are added after the project's own flags.

PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
MPICC    ?= mpicc
BUILD    ?= build
OPT      ?= -O3
ARCH     ?=
# A shell's ARCH (often x86_64) is no -march value: only make ARCH=... sets it.
ifeq ($(origin ARCH),environment)
ARCH     :=
endif
WERROR   ?= $(if $(CI),-Werror,)
PYTHON   ?= /usr/bin/python3

# -L and a run path for the folder of ROOT that holds libNAME (lib64 or lib):
# root_ldflags ROOT,NAME
comma := ,
root_libdir   = $(or $(patsubst %/,%,$(dir $(firstword $(wildcard $(1)/lib64/lib$(2).so* $(1)/lib64/lib$(2).a)))),$(1)/lib)
root_ldflags  = -L$(call root_libdir,$(1),$(2)) -Wl$(comma)-rpath$(comma)$(call root_libdir,$(1),$(2))
HDF5_CFLAGS := $(if $(HDF5_ROOT),-I$(HDF5_ROOT)/include,$(shell pkg-config --cflags hdf5-openmpi 2>/dev/null || pkg-config --cflags hdf5 2>/dev/null))
HDF5_LIBS   := $(if $(HDF5_ROOT),$(call root_ldflags,$(HDF5_ROOT),hdf5) -lhdf5,$(shell pkg-config --libs hdf5-openmpi 2>/dev/null || pkg-config --libs hdf5 2>/dev/null))
DNNL_CFLAGS := $(if $(DNNL_ROOT),-I$(DNNL_ROOT)/include,)
DNNL_LIBS   := $(if $(DNNL_ROOT),$(call root_ldflags,$(DNNL_ROOT),dnnl),) -ldnnl
JPEG_CFLAGS := $(if $(JPEG_ROOT),-I$(JPEG_ROOT)/include,)
JPEG_LIBS   := $(if $(JPEG_ROOT),$(call root_ldflags,$(JPEG_ROOT),turbojpeg),) -lturbojpeg
PNG_CFLAGS  := $(if $(PNG_ROOT),-I$(PNG_ROOT)/include,)
PNG_LIBS    := $(if $(PNG_ROOT),$(call root_ldflags,$(PNG_ROOT),png),) -lpng

# The project's flags; the user's CFLAGS/LDFLAGS/LDLIBS come after them (so
# CFLAGS=-O0 wins over -O3) and never replace them.
RD_CFLAGS  := $(OPT) -g $(if $(ARCH),-march=$(ARCH),) -std=c11 -D_GNU_SOURCE -Wall -Wextra \
              $(WERROR) -fopenmp -MMD -MP -Iinclude $(HDF5_CFLAGS) $(DNNL_CFLAGS) $(JPEG_CFLAGS) $(PNG_CFLAGS)
RD_LDFLAGS := -fopenmp
RD_LDLIBS  := $(HDF5_LIBS) $(DNNL_LIBS) $(JPEG_LIBS) $(PNG_LIBS) -lz -lpthread -lm
ifdef SANITIZE
RD_CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
RD_LDFLAGS += -fsanitize=$(SANITIZE)
endif
ALL_CFLAGS  = $(RD_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(RD_LDFLAGS) $(LDFLAGS)
ALL_LDLIBS  = $(RD_LDLIBS) $(LDLIBS)

ifeq ($(V),1)
Q :=
else
Q := @
endif

# Archives by layer: the trainer's library, the prep tool's, the plotter's, and
# core under all of them. A tool links its own archive and core; tests link all.
CORE_SRC  := $(sort $(wildcard src/core/*.c))
LIB_SRC   := $(sort $(wildcard src/nn/*.c src/model/*.c src/optim/*.c \
                               src/data/*.c src/dist/*.c src/train/*.c))
PREP_SRC  := $(sort $(wildcard src/prep/*.c))
PLOT_SRC  := $(sort $(wildcard src/plot/*.c))
CORE_LIB  := $(BUILD)/libcore.a
LIB       := $(BUILD)/libresnet.a
PREP_LIB  := $(BUILD)/libprep.a
PLOT_LIB  := $(BUILD)/libplot.a
ALL_LIBS  := $(LIB) $(PREP_LIB) $(PLOT_LIB) $(CORE_LIB)
LIB_OBJ   := $(patsubst %.c,$(BUILD)/%.o,$(CORE_SRC) $(LIB_SRC) $(PREP_SRC) $(PLOT_SRC))
# The archive each tool links besides core (the trainer's by default).
LIBS_resnet_prep := $(PREP_LIB)
LIBS_resnet_plot := $(PLOT_LIB)
LIBS_resnet_predict := $(LIB) $(PREP_LIB) # lists image folders with prep's scanner
TOOLS     := $(patsubst src/tools/%.c,$(BUILD)/bin/%,$(wildcard src/tools/*.c))
REF_SRC   := $(wildcard tests/ref/*.c tests/unit/common/*.c)
REF_OBJ   := $(REF_SRC:%.c=$(BUILD)/%.o)
UNIT      := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
MPITESTS  := $(patsubst tests/mpi/%.c,$(BUILD)/tests/%,$(wildcard tests/mpi/mpi_*.c))

.PHONY: all deps deps-build deps-test deps-run deps-bench config doctor test test-multinode unit run bench install clean fuzz fuzz-image
# Objects of the tools and tests are intermediate files to make; keep them, so
# that make neither deletes them (and prints "rm ...") nor rebuilds them next time.
.SECONDARY:
all: $(TOOLS)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC    $<")
	$(Q)$(MPICC) $(ALL_CFLAGS) -c $< -o $@

$(CORE_LIB): $(CORE_SRC:%.c=$(BUILD)/%.o)
$(LIB):      $(LIB_SRC:%.c=$(BUILD)/%.o)
$(PREP_LIB): $(PREP_SRC:%.c=$(BUILD)/%.o)
$(PLOT_LIB): $(PLOT_SRC:%.c=$(BUILD)/%.o)
$(ALL_LIBS):
	@$(if $(Q),echo "  AR    $@")
	$(Q)rm -f $@ && ar rcs $@ $^

# Tests and benchmarks may reach a module's private headers.
$(BUILD)/tests/%.o $(BUILD)/bench/%.o: RD_CFLAGS += -Isrc/train -Isrc/prep

.SECONDEXPANSION:
$(BUILD)/bin/%: $(BUILD)/src/tools/%.o $$(or $$(LIBS_$$*),$$(LIB)) $(CORE_LIB)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LINK  $@")
	$(Q)$(MPICC) $(ALL_LDFLAGS) $^ $(ALL_LDLIBS) -o $@

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(REF_OBJ) $(ALL_LIBS)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LINK  $@")
	$(Q)$(MPICC) $(ALL_LDFLAGS) $^ $(ALL_LDLIBS) -lcmocka -o $@

$(BUILD)/tests/mpi_%: $(BUILD)/tests/mpi/mpi_%.o $(REF_OBJ) $(ALL_LIBS)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LINK  $@")
	$(Q)$(MPICC) $(ALL_LDFLAGS) $^ $(ALL_LDLIBS) -lcmocka -o $@

$(BUILD)/bench/gemm_peak: bench/gemm_peak.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC    $<")
	$(Q)$(MPICC) $(ALL_CFLAGS) $(ALL_LDFLAGS) $< $(DNNL_LIBS) $(LDLIBS) -o $@

# Loader throughput (images/s per core, raw and JPEG, with augmentation):
#   build/bench/loader_bench [--threads N] [--aug rrc] [--size 256] [--crop 224]
$(BUILD)/bench/loader_bench: $(BUILD)/bench/loader_bench.o $(ALL_LIBS)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LINK  $@")
	$(Q)$(MPICC) $(ALL_LDFLAGS) $^ $(ALL_LDLIBS) -o $@
-include $(BUILD)/bench/loader_bench.d

# Debian packages per purpose; `make deps` installs only what is missing.
PKG_BUILD := make gcc pkg-config libdnnl-dev libopenmpi-dev openmpi-bin \
             libhdf5-openmpi-dev libturbojpeg0-dev libpng-dev zlib1g-dev
PKG_RUN   := dataset-fashion-mnist gnuplot-nox
PKG_TEST  := libcmocka-dev hdf5-tools python3-torch python3-torchvision python3-h5py python3-numpy \
             slurm-wlm munge shellcheck iproute2
PKG_BENCH := python3-torch python3-torchvision python3-h5py

# The package step of make run/test/bench. NO_INSTALL=1 skips it; when the
# build libraries are found (tools/config.sh, as make config) only the
# packages beyond them are looked for, and off Debian nothing is installed.
CONFIG_ENV = MPICC="$(MPICC)" BUILD="$(BUILD)" CFLAGS="$(CFLAGS)" LDFLAGS="$(LDFLAGS)" \
             HDF5_ROOT="$(HDF5_ROOT)" HDF5_CFLAGS="$(HDF5_CFLAGS)" HDF5_LIBS="$(HDF5_LIBS)" \
             DNNL_CFLAGS="$(DNNL_CFLAGS)" DNNL_LIBS="$(DNNL_LIBS)" \
             JPEG_ROOT="$(JPEG_ROOT)" JPEG_CFLAGS="$(JPEG_CFLAGS)" JPEG_LIBS="$(JPEG_LIBS)" \
             PNG_ROOT="$(PNG_ROOT)" PNG_CFLAGS="$(PNG_CFLAGS)" PNG_LIBS="$(PNG_LIBS)"
install_deps = $(if $(filter 1,$(NO_INSTALL)),echo "NO_INSTALL=1: not installing packages",\
               if $(CONFIG_ENV) sh tools/config.sh --quiet; then \
                   sh tests/install_deps.sh --optional $(1); \
               else sh tests/install_deps.sh $(PKG_BUILD) $(1); fi)
deps: deps-build
deps-build: ; @$(call install_deps,)
deps-run:   ; @$(call install_deps,$(PKG_RUN))
deps-test:  ; @$(call install_deps,$(PKG_RUN) $(PKG_TEST))
deps-bench: ; @$(call install_deps,$(PKG_BENCH))

# What was found, with a hint for each missing piece; fails when the build cannot work.
config doctor:
	@$(CONFIG_ENV) sh tools/config.sh

# Ordering: deps before any compilation when both are asked for.
ifneq ($(filter test run bench,$(MAKECMDGOALS)),)
$(LIB_OBJ) $(REF_OBJ): | $(if $(filter test,$(MAKECMDGOALS)),deps-test,$(if $(filter run,$(MAKECMDGOALS)),deps-run,deps-bench))
endif

# The benchmarks' programs are built with the tests, so that no change breaks them unseen.
unit: $(TOOLS) $(UNIT) $(MPITESTS) $(BUILD)/bench/gemm_peak $(BUILD)/bench/loader_bench

test: deps-test
	@$(MAKE) --no-print-directory unit
	@BUILD=$(BUILD) PYTHON=$(PYTHON) sh tests/run_all.sh

# The Slurm tests across 3 nodes in network namespaces (root; docs/slurm.md).
test-multinode: unit
	@s=0; for t in tests/slurm/test_multinode*.sh; do \
	    BUILD=$(BUILD) PYTHON=$(PYTHON) timeout -k 10 600 sh $$t || s=1; done; exit $$s

# Structure-aware fuzzing of the three tools, built with ASan and UBSan
# (docs/reliability.md). A finding's inputs and repro.sh stay in FUZZ_FINDINGS.
# Then FUZZ_KILLS rounds of kill -9 during checkpoint writes (tests/fuzz/ckpt_kill.sh).
FUZZ_BUILD    ?= build-san
FUZZ_CASES    ?= 10000
FUZZ_SEED     ?= 1
FUZZ_JOBS     ?= 2
FUZZ_TIMEOUT  ?= 30
FUZZ_FINDINGS ?= $(FUZZ_BUILD)/fuzz-findings
FUZZ_KILLS    ?= 20
fuzz:
	@$(MAKE) --no-print-directory all BUILD=$(FUZZ_BUILD) SANITIZE=address,undefined
	@$(PYTHON) tests/fuzz/fuzz.py --build $(FUZZ_BUILD) --cases $(FUZZ_CASES) --seed $(FUZZ_SEED) \
	    --jobs $(FUZZ_JOBS) --timeout $(FUZZ_TIMEOUT) --findings $(FUZZ_FINDINGS) \
	    $(if $(FUZZ_MAX_SECONDS),--max-seconds $(FUZZ_MAX_SECONDS))
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) sh tests/fuzz/ckpt_kill.sh $(FUZZ_KILLS)

# Byte-level fuzzing of the JPEG/PNG decoder with clang's libFuzzer
# (apt-get install clang libclang-rt-14-dev) for FUZZ_SECONDS.
FUZZ_SECONDS ?= 300
FUZZ_LF      := $(FUZZ_BUILD)/libfuzzer
$(FUZZ_LF)/image_decode: tests/fuzz/libfuzzer/image_decode.c src/core/image_io.c src/core/error.c src/core/log.c
	@mkdir -p $(@D)
	$(Q)OMPI_CC=clang $(MPICC) -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
	    -Iinclude $(HDF5_CFLAGS) $(DNNL_CFLAGS) $(JPEG_CFLAGS) $(PNG_CFLAGS) $^ $(DNNL_LIBS) $(JPEG_LIBS) $(PNG_LIBS) -lz -lm -o $@
fuzz-image: $(FUZZ_LF)/image_decode
	@mkdir -p $(FUZZ_LF)/corpus $(FUZZ_FINDINGS)
	@$(PYTHON) tests/fuzz/seeds.py $(FUZZ_LF)/seeds
	$(FUZZ_LF)/image_decode -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=30 \
	    -artifact_prefix=$(abspath $(FUZZ_FINDINGS))/image- -print_final_stats=1 $(FUZZ_LF)/corpus $(FUZZ_LF)/seeds

run: deps-run
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) sh datasets/run_default.sh

bench: deps-bench
	@$(MAKE) --no-print-directory all $(BUILD)/bench/gemm_peak $(BUILD)/bench/loader_bench
	@BUILD=$(BUILD) PYTHON=$(PYTHON) sh bench/run_bench.sh

# Installs the tools into $(DESTDIR)$(BINDIR) (BINDIR = $(PREFIX)/bin) and the PyTorch
# converters (docs/pytorch.md), which need no build, into share/resnet-dist/tools; DESTDIR
# stages the tree for packaging and is not part of the installed paths.
install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(PREFIX)/share/resnet-dist/tools
	install -m 755 $(TOOLS) $(DESTDIR)$(BINDIR)/
	install -m 755 tools/ckpt_to_torch.py tools/torch_to_ckpt.py $(DESTDIR)$(PREFIX)/share/resnet-dist/tools/
	install -m 644 tools/resnet_torch.py tools/torch_io.py $(DESTDIR)$(PREFIX)/share/resnet-dist/tools/

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJ:.o=.d) $(REF_OBJ:.o=.d) $(BUILD)/src/tools/*.d $(BUILD)/tests/unit/*.d $(BUILD)/tests/mpi/*.d
