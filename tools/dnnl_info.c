/* dnnl_info - the oneDNN library this build links: its version and the CPU
 * instruction set its kernels dispatch to on this machine (chosen at run
 * time, whatever -march the project was compiled with). Used by make config. */
#include <stdio.h>

#include <oneapi/dnnl/dnnl.h>

#if DNNL_VERSION_MAJOR != 2
#error "resnet-dist uses the oneDNN 2.x C API (2.6 tested); this dnnl.h is another major version"
#endif

static const char *isa_name(dnnl_cpu_isa_t isa)
{
    switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "all";
    }
}

int main(void)
{
    const dnnl_version_t *v = dnnl_version();
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    /* the ISA values are bit sets: an ISA includes every bit of those below it */
    int bf16 = ((unsigned)isa & (unsigned)dnnl_cpu_isa_avx512_core_bf16) ==
               (unsigned)dnnl_cpu_isa_avx512_core_bf16;
    printf("version %d.%d.%d\n", v->major, v->minor, v->patch);
    printf("header %d.%d.%d\n", DNNL_VERSION_MAJOR, DNNL_VERSION_MINOR, DNNL_VERSION_PATCH);
    printf("isa %s\n", isa_name(isa));
    printf("bf16 %s\n", bf16 ? "yes" : "no");
    return v->major == 2 ? 0 : 1;
}
