#!/bin/sh
# The build on someone else's machine: make config names every piece it
# looked for and refuses a serial HDF5; CFLAGS/LDFLAGS given to make add to
# the project's flags instead of replacing them; ARCH=native is opt-in;
# NO_INSTALL=1 and libraries found off Debian skip the package step; make
# install PREFIX= DESTDIR= puts the tools where docs/install.md says. Uses
# make -n or single objects, so nothing is rebuilt.
BUILD=${BUILD:-build}
T="$BUILD/tmp/e2e-build-config"
rm -rf "$T" && mkdir -p "$T"
. tests/e2e/lib/common.sh  # sets pass and fail
MAKE="make --no-print-directory"

# make config: one line per piece, ok here; exit 0
if expect 0 "^config: everything the build needs was found" "make config" -- $MAKE config BUILD="$T/b"; then
    for piece in compiler MPI oneDNN "CPU ISA" HDF5 libjpeg-turbo libpng CMocka gnuplot; do
        if grep -q "^$piece  *ok " "$T/out"; then ok "make config: $piece"; else bad "make config lacks '$piece ok'"; show "$T/out" 12; fi
    done
    grep -q "^MPI .*Open MPI.*PMIx" "$T/out" && ok "make config: Open MPI with PMIx" || bad "make config: no Open MPI/PMIx line"
    grep -q "^oneDNN  *ok  *2\.[0-9]*\.[0-9]* (the 2.x C API" "$T/out" && ok "make config: oneDNN 2.x" || bad "make config: oneDNN version"
    grep -q "^CPU ISA .*bf16: \(yes\|no\)" "$T/out" && ok "make config: bf16 yes/no" || bad "make config: no bf16 line"
fi
$MAKE doctor BUILD="$T/b" >"$T/doctor" 2>&1 && cmp -s "$T/out" "$T/doctor" && ok "make doctor = make config" ||
    bad "make doctor differs from make config"

# A serial HDF5 (H5pubconf.h without H5_HAVE_PARALLEL) is refused, by name.
mkdir -p "$T/h5serial/include" "$T/h5serial/lib"
printf '#define H5_VERSION "1.10.8"\n#define H5_HAVE_FILTER_DEFLATE 1\n' >"$T/h5serial/include/H5pubconf.h"
expect 1 "^HDF5  *SERIAL  *HDF5 1.10.8 at $T/h5serial is a serial build" "make config refuses a serial HDF5" -- \
    sh -c "$MAKE config BUILD=$T/b HDF5_ROOT=$T/h5serial 2>&1; [ \$? -ne 0 ] && exit 1"
grep -q "hint: .*HDF5 built with MPI" "$T/out" && grep -q "^config: missing or unusable: HDF5" "$T/out" &&
    ok "serial HDF5: a hint and the summary line" || { bad "serial HDF5: no hint or summary"; show "$T/out"; }
# oneDNN 3.x headers: this code needs the 2.x C API.
mkdir -p "$T/dnnl3/include/oneapi/dnnl"
printf '#define DNNL_VERSION_MAJOR 3\n#define DNNL_VERSION_MINOR 4\n#define DNNL_VERSION_PATCH 0\n' \
    >"$T/dnnl3/include/oneapi/dnnl/dnnl.h"
expect 1 "^oneDNN  *WRONG  *3.x headers: this code needs the oneDNN 2.x C API" "make config refuses oneDNN 3.x" -- \
    sh -c "$MAKE config BUILD=$T/b DNNL_ROOT=$T/dnnl3 2>&1; [ \$? -ne 0 ] && exit 1"

# User CFLAGS add to the project's flags (one object, built into a scratch BUILD).
expect 0 "" "CFLAGS=-DRD_TEST_FLAG builds one object" -- \
    $MAKE V=1 BUILD="$T/b" CFLAGS=-DRD_TEST_FLAG "$T/b/src/core/log.o"
line=$(grep 'src/core/log.c' "$T/out")
for flag in -Wall -Wextra -O3 -std=c11 -Iinclude -DRD_TEST_FLAG; do
    case " $line " in *" $flag "*) ok "compile line has $flag" ;; *) bad "compile line lacks $flag: $line" ;; esac
done
case " $line " in *" -march="*) bad "the default build has -march: $line" ;; *) ok "portable by default (no -march)" ;; esac
$MAKE -n -B V=1 BUILD="$T/b" ARCH=native "$T/b/src/core/log.o" | grep -q -- ' -march=native ' &&
    ok "ARCH=native adds -march=native" || bad "ARCH=native: no -march=native"
ARCH=x86_64 $MAKE -n -B V=1 BUILD="$T/b" "$T/b/src/core/log.o" | grep -q -- '-march' &&
    bad "a shell's ARCH=x86_64 reached -march" || ok "a shell's ARCH is ignored"
$MAKE -n V=1 BUILD="$T/b" LDFLAGS=-Wl,--as-needed LDLIBS=-lrt "$T/b/bin/resnet_plot" >"$T/link" 2>&1
link=$(grep -- '-o \S*bin/resnet_plot' "$T/link")
case " $link " in *" -fopenmp "*"-Wl,--as-needed "*"-ldnnl "*"-lrt "*) ok "LDFLAGS/LDLIBS add to the project's" ;;
*) bad "link line: $link" ;; esac
$MAKE -n V=1 BUILD="$T/b" JPEG_ROOT=/opt/jt PNG_ROOT=/opt/png "$T/b/src/core/image_io.o" \
    "$T/b/bin/resnet_plot" >"$T/roots" 2>&1
grep -q -- '-I/opt/jt/include -I/opt/png/include' "$T/roots" &&
    grep -q -- '-L/opt/jt/lib -Wl,-rpath,/opt/jt/lib -lturbojpeg -L/opt/png/lib -Wl,-rpath,/opt/png/lib -lpng' "$T/roots" &&
    ok "JPEG_ROOT, PNG_ROOT: include, lib and run path" || { bad "JPEG_ROOT/PNG_ROOT"; show "$T/roots" 3; }
mkdir -p "$T/jt64/lib64" && : >"$T/jt64/lib64/libturbojpeg.so"   # a Spack/RHEL layout
$MAKE -n V=1 BUILD="$T/b" JPEG_ROOT="$T/jt64" "$T/b/bin/resnet_plot" 2>&1 |
    grep -q -- "-L$T/jt64/lib64 -Wl,-rpath,$T/jt64/lib64 -lturbojpeg" &&
    ok "a *_ROOT with lib64/ links from lib64" || bad "JPEG_ROOT with lib64: not linked from lib64"

# The package step: NO_INSTALL=1 skips it; off Debian (no dpkg-query) with
# the libraries found it is skipped with a note.
expect 0 "^NO_INSTALL=1: not installing packages" "NO_INSTALL=1 skips the package step" -- \
    $MAKE deps-test NO_INSTALL=1
$MAKE -n test NO_INSTALL=1 BUILD="$T/b" 2>&1 | grep -q install_deps &&
    bad "make -n test NO_INSTALL=1 still runs install_deps.sh" || ok "make test NO_INSTALL=1: no install_deps.sh"
expect 0 "^note: not a Debian system: not installing packages; libraries found" \
    "off Debian with the libraries found: no package step" -- env DPKG_QUERY="$T/no-dpkg-query" $MAKE deps-test BUILD="$T/b"
expect 2 "NO_INSTALL=1" "off Debian without the libraries: an error with the way out" -- \
    env DPKG_QUERY="$T/no-dpkg-query" $MAKE deps-build BUILD="$T/b" HDF5_ROOT="$T/h5serial"

# make install PREFIX= DESTDIR=: the tools in DESTDIR/PREFIX/bin, runnable.
expect 0 "" "make install PREFIX=/opt/rd DESTDIR=stage" -- $MAKE install BUILD="$BUILD" PREFIX=/opt/rd DESTDIR="$T/stage"
for tool in resnet_dist resnet_prep resnet_plot; do
    [ -x "$T/stage/opt/rd/bin/$tool" ] && "$T/stage/opt/rd/bin/$tool" --version >/dev/null 2>&1 &&
        ok "installed $tool runs" || bad "no runnable $T/stage/opt/rd/bin/$tool"
done
expect 0 "" "make install BINDIR=" -- $MAKE install BUILD="$BUILD" BINDIR="$T/bindir"
[ -x "$T/bindir/resnet_plot" ] && ok "BINDIR places the tools" || bad "BINDIR: nothing in $T/bindir"

echo "build_config: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
