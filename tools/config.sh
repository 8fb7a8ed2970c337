#!/bin/sh
# config.sh - what the build will use (make config / make doctor): the
# compiler, MPI, oneDNN and the CPU ISA it dispatches to, parallel HDF5,
# libjpeg-turbo, libpng, and the optional CMocka and gnuplot. Each piece is
# compiled, linked and (where it says something) run with the flags the
# Makefile passes in the environment (MPICC, *_CFLAGS, *_LIBS). Prints one
# line per piece and a hint for each one that is missing; exits 1 when
# something the build needs is missing or unusable. --quiet: exit status only.
quiet=0
[ "$1" = "--quiet" ] && quiet=1
MPICC=${MPICC:-mpicc}
here=$(dirname "$0")
dir="${BUILD:-build}/config"
mkdir -p "$dir" || exit 1
missing=""

say() { [ "$quiet" -eq 1 ] || printf '%-14s %-8s %s\n' "$1" "$2" "$3"; }
hint() { [ "$quiet" -eq 1 ] || printf '%-14s %-8s hint: %s\n' "" "" "$1"; }
need() { # NAME STATE TEXT HINT: a required piece that is missing or unusable
    say "$1" "$2" "$3"
    hint "$4"
    missing="$missing $1"
}
# probe NAME CFLAGS LIBS: compiles and links $dir/NAME.c into $dir/NAME;
# the compiler's first error line is kept in $dir/NAME.err.
probe() {
    # shellcheck disable=SC2086 # the flags are word lists
    $MPICC $2 -o "$dir/$1" "$dir/$1.c" $3 >"$dir/$1.log" 2>&1
    rc=$?
    grep -m 1 -i 'error' "$dir/$1.log" >"$dir/$1.err"
    return $rc
}
why() { sed 's/^[^ ]*: //' "$dir/$1.err" | cut -c1-100; }
# macro HEADER NAME CFLAGS: the value of a preprocessor macro, empty if undefined
macro() {
    # shellcheck disable=SC2086
    printf '#include <%s>\nRD_VALUE %s\n' "$1" "$2" | $MPICC -E -P $3 - 2>/dev/null |
        sed -n 's/^RD_VALUE //p' | tr -d '"' | grep -v "^$2\$"
}

# ---------------------------------------------------------------- compiler
if ! command -v "$MPICC" >/dev/null 2>&1; then
    need compiler MISSING "no MPI compiler wrapper '$MPICC'" \
        "load your MPI module (module load openmpi) or give MPICC=/path/to/mpicc"
    [ "$quiet" -eq 1 ] || echo "config: cannot go on without a compiler"
    exit 1
fi
cc=$($MPICC -showme:command 2>/dev/null || $MPICC -show 2>/dev/null | cut -d' ' -f1)
say compiler ok "$MPICC -> ${cc:-?}: $($MPICC --version 2>/dev/null | head -n 1)"

# ---------------------------------------------------------------- MPI
cat >"$dir/mpi.c" <<'C'
#include <mpi.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
    char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int n = 0;
    MPI_Get_library_version(v, &n); /* allowed before MPI_Init */
    v[strcspn(v, ",\n")] = '\0';
    printf("%s\n", v);
    return 0;
}
C
if probe mpi "" "" && mpi=$("$dir/mpi") && [ -n "$mpi" ]; then
    case $mpi in
    *"Open MPI"*)
        ompi_info=$(dirname "$(command -v "$MPICC")")/ompi_info
        [ -x "$ompi_info" ] || ompi_info=ompi_info
        pmix=$("$ompi_info" --parsable 2>/dev/null | sed -n 's/^mca:pmix:\([^:]*\):version:.*/\1/p' |
            sort -u | grep -v '^\(isolated\|flux\|s1\|s2\|cray\)$' | tr '\n' ' ' | sed 's/ $//')
        if [ -n "$pmix" ]; then
            say MPI ok "$mpi, with PMIx (pmix components: $pmix)"
        else
            say MPI ok "$mpi, without PMIx: srun cannot start its ranks"
            hint "LAUNCHER=mpirun for the job scripts (docs/slurm.md), or an Open MPI built --with-pmix"
        fi
        ;;
    *) say MPI ok "$mpi (not Open MPI: works as plain MPI, tested with Open MPI 4.1)" ;;
    esac
else
    need MPI MISSING "cannot build an MPI program with $MPICC: $(why mpi)" \
        "load an MPI module (Open MPI 4.1 with PMIx tested) or give MPICC="
fi

# ---------------------------------------------------------------- oneDNN
cp "$here/dnnl_info.c" "$dir/dnnl.c"
if probe dnnl "$DNNL_CFLAGS" "$DNNL_LIBS" && "$dir/dnnl" >"$dir/dnnl.out" 2>&1; then
    field() { sed -n "s/^$1 //p" "$dir/dnnl.out"; }
    say oneDNN ok "$(field version) (the 2.x C API this code needs; 2.6 tested)"
    say "CPU ISA" ok "$(field isa), chosen by oneDNN at run time; bf16: $(field bf16)"
elif grep -q '2.x C API' "$dir/dnnl.log"; then
    need oneDNN WRONG "$(macro oneapi/dnnl/dnnl.h DNNL_VERSION_MAJOR "$DNNL_CFLAGS").x headers: this code needs the oneDNN 2.x C API" \
        "give DNNL_ROOT= of a oneDNN 2.x install (2.6 tested; Spack: onednn@2.6)"
elif [ -f "$dir/dnnl" ]; then
    need oneDNN WRONG "the library found at run time is not 2.x: $(cat "$dir/dnnl.out")" \
        "LD_LIBRARY_PATH or the run path points to another oneDNN; give DNNL_ROOT="
else
    need oneDNN MISSING "cannot build against oneDNN: $(why dnnl)" \
        "module load onednn/2.6 (or Spack: onednn@2.6) and give DNNL_ROOT= (its include/ and lib/)"
fi

# ---------------------------------------------------------------- HDF5
h5ver=$(macro H5pubconf.h H5_VERSION "$HDF5_CFLAGS")
h5par=$(macro H5pubconf.h H5_HAVE_PARALLEL "$HDF5_CFLAGS")
where=${HDF5_ROOT:+ at $HDF5_ROOT}
cat >"$dir/hdf5.c" <<'C'
#include <hdf5.h>
int main(void) { return H5open() < 0; }
C
if [ -z "$h5ver" ]; then
    need HDF5 MISSING "no H5pubconf.h$where (HDF5_CFLAGS='$HDF5_CFLAGS')" \
        "module load a parallel HDF5 1.10 (Spack: hdf5@1.10+mpi) and give HDF5_ROOT="
elif [ -z "$h5par" ]; then
    need HDF5 SERIAL "HDF5 $h5ver$where is a serial build (H5_HAVE_PARALLEL is not defined): resnet_dist needs parallel HDF5" \
        "give HDF5_ROOT= of an HDF5 built with MPI (Debian: libhdf5-openmpi-dev; Spack: hdf5+mpi)"
elif ! probe hdf5 "$HDF5_CFLAGS" "$HDF5_LIBS" || ! "$dir/hdf5"; then
    need HDF5 MISSING "HDF5 $h5ver$where, parallel, but cannot link or run against it: $(why hdf5)" \
        "give HDF5_ROOT= (its include/ and lib/); its MPI must be the one of MPICC"
else
    say HDF5 ok "$h5ver$where, parallel"
fi

# ---------------------------------------------------------------- image libraries
cat >"$dir/jpeg.c" <<'C'
#include <stddef.h>
#include <turbojpeg.h>
int main(void) { return tjInitDecompress() == NULL; }
C
if probe jpeg "$JPEG_CFLAGS" "$JPEG_LIBS"; then
    v=$(macro jconfig.h LIBJPEG_TURBO_VERSION "$JPEG_CFLAGS")
    say libjpeg-turbo ok "${v:-version unknown}${JPEG_ROOT:+ at $JPEG_ROOT}"
else
    need libjpeg-turbo MISSING "cannot build against turbojpeg.h / -lturbojpeg: $(why jpeg)" \
        "module load libjpeg-turbo (Spack: libjpeg-turbo) and give JPEG_ROOT="
fi
cat >"$dir/png.c" <<'C'
#include <png.h>
int main(void) { return png_access_version_number() == 0; }
C
if probe png "$PNG_CFLAGS" "$PNG_LIBS -lz"; then
    say libpng ok "$(macro png.h PNG_LIBPNG_VER_STRING "$PNG_CFLAGS")${PNG_ROOT:+ at $PNG_ROOT}"
else
    need libpng MISSING "cannot build against png.h / -lpng: $(why png)" \
        "module load libpng (Spack: libpng) and give PNG_ROOT="
fi

# ---------------------------------------------------------------- optional
cat >"$dir/cmocka.c" <<'C'
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
static void t(void **s) { (void)s; }
int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(t)};
    return tests[0].test_func == NULL;
}
C
if probe cmocka "$CFLAGS" "-lcmocka $LDFLAGS"; then
    say CMocka ok "(the unit tests need it)"
else
    say CMocka missing "(optional: only the unit tests need it)"
    hint "Spack: cmocka; Debian: libcmocka-dev; then CFLAGS=-I... LDFLAGS=-L..."
fi
if command -v gnuplot >/dev/null 2>&1; then
    say gnuplot ok "$(gnuplot --version 2>/dev/null) (resnet_plot needs it)"
else
    say gnuplot missing "(optional: only resnet_plot needs it)"
fi

if [ -n "$missing" ]; then
    [ "$quiet" -eq 1 ] || echo "config: missing or unusable:$missing (see docs/install.md)"
    exit 1
fi
[ "$quiet" -eq 1 ] || echo "config: everything the build needs was found"
exit 0
