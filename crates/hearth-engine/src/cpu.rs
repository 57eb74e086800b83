//! Which CPU instruction sets the engine's kernels were built for. ggml compiles its CPU backend
//! for a fixed set of them (its portable defaults, or the build machine's with
//! `GGML_NATIVE`), and a kernel compiled without AVX-512 never uses it, however capable the CPU.
//! `hearth version` and `/api/version` report the list, so a slow decode can be traced to a
//! build that left the CPU's best instructions unused.

/// Each instruction set ggml's CPU backend can be built for, with ggml's probe of whether this
/// build uses it. The probes read compile-time flags of the linked ggml.
const FEATURES: &[(&str, unsafe extern "C" fn() -> std::os::raw::c_int)] = &[
    ("sse3", llama_cpp_sys_2::ggml_cpu_has_sse3),
    ("ssse3", llama_cpp_sys_2::ggml_cpu_has_ssse3),
    ("avx", llama_cpp_sys_2::ggml_cpu_has_avx),
    ("avx_vnni", llama_cpp_sys_2::ggml_cpu_has_avx_vnni),
    ("avx2", llama_cpp_sys_2::ggml_cpu_has_avx2),
    ("bmi2", llama_cpp_sys_2::ggml_cpu_has_bmi2),
    ("f16c", llama_cpp_sys_2::ggml_cpu_has_f16c),
    ("fma", llama_cpp_sys_2::ggml_cpu_has_fma),
    ("avx512", llama_cpp_sys_2::ggml_cpu_has_avx512),
    ("avx512_vbmi", llama_cpp_sys_2::ggml_cpu_has_avx512_vbmi),
    ("avx512_vnni", llama_cpp_sys_2::ggml_cpu_has_avx512_vnni),
    ("avx512_bf16", llama_cpp_sys_2::ggml_cpu_has_avx512_bf16),
    ("amx_int8", llama_cpp_sys_2::ggml_cpu_has_amx_int8),
    ("neon", llama_cpp_sys_2::ggml_cpu_has_neon),
    ("arm_fma", llama_cpp_sys_2::ggml_cpu_has_arm_fma),
    ("fp16_va", llama_cpp_sys_2::ggml_cpu_has_fp16_va),
    ("dotprod", llama_cpp_sys_2::ggml_cpu_has_dotprod),
    ("matmul_int8", llama_cpp_sys_2::ggml_cpu_has_matmul_int8),
    ("sve", llama_cpp_sys_2::ggml_cpu_has_sve),
    ("sme", llama_cpp_sys_2::ggml_cpu_has_sme),
];

/// The instruction sets the linked ggml CPU kernels use, in ggml's order (`avx2`, `avx512`, ...).
pub fn cpu_features() -> Vec<&'static str> {
    FEATURES
        .iter()
        // SAFETY: each probe takes no arguments, touches no state and only returns a flag that
        // was fixed when ggml was compiled; it is safe to call at any time, from any thread.
        .filter(|(_, probe)| unsafe { probe() } != 0)
        .map(|(name, _)| *name)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_build_names_the_instruction_sets_its_kernels_use() {
        let features = super::cpu_features();
        // Every x86-64 build of ggml, portable or native, uses at least SSE3.
        if cfg!(target_arch = "x86_64") {
            assert!(features.contains(&"sse3"), "{features:?}");
        }
        let mut sorted = features.clone();
        sorted.dedup();
        assert_eq!(sorted, features);
    }

    /// `.cargo/config.toml` builds for the building machine's CPU (`target-cpu=native`), and
    /// llama-cpp-sys-2 then turns ggml's `GGML_NATIVE` on: the kernels use every instruction set
    /// the Rust code was compiled for. Before, they stopped at AVX2 on CPUs with AVX-512.
    #[test]
    fn the_kernels_use_the_instruction_sets_the_build_targets() {
        let features = super::cpu_features();
        for (targeted, feature) in [
            (cfg!(target_feature = "avx2"), "avx2"),
            (cfg!(target_feature = "avx512f"), "avx512"),
            (cfg!(target_feature = "avx512vnni"), "avx512_vnni"),
        ] {
            if targeted {
                assert!(
                    features.contains(&feature),
                    "the build targets {feature} but the kernels were built without it: {features:?}"
                );
            }
        }
    }
}
