//! Which CPU instruction sets the engine's kernels were built for. ggml compiles its CPU backend
//! for a fixed set of them (its portable defaults, or the build machine's with
//! `GGML_NATIVE`), and a kernel compiled without AVX-512 never uses it, however capable the CPU.
//! `hearth version` and `/api/version` report the list, so a slow decode can be traced to a
//! build that left the CPU's best instructions unused.

/// The instruction sets ggml's CPU backend can be built for, in ggml's order, as it names them
/// in lower case. Its feature list holds other entries too (`REPACK`, `OPENMP`, the variant's
/// name), which are not instruction sets.
const INSTRUCTION_SETS: &[&str] = &[
    "sse3",
    "ssse3",
    "avx",
    "avx_vnni",
    "avx2",
    "bmi2",
    "f16c",
    "fma",
    "avx512",
    "avx512_vbmi",
    "avx512_vnni",
    "avx512_bf16",
    "amx_int8",
    "neon",
    "arm_fma",
    "fp16_va",
    "dotprod",
    "matmul_int8",
    "sve",
    "sme",
];

/// The instruction sets the CPU kernels in use were built for, in ggml's order (`avx2`,
/// `avx512`, ...). Asked of ggml's backend registry rather than of linked probes, so the answer
/// is right for a portable build too, where the CPU backend is one of several variants that
/// `crate::backend` loads at run time: the one built for the best instruction sets this CPU has.
pub fn cpu_features() -> Vec<&'static str> {
    crate::backend::load_cpu_backends();
    let reported = reported_features();
    INSTRUCTION_SETS
        .iter()
        .copied()
        .filter(|name| reported.iter().any(|reported| reported == name))
        .collect()
}

/// The names in the CPU backend's feature list whose value is set, lower-cased.
fn reported_features() -> Vec<String> {
    use llama_cpp_sys_2::{
        ggml_backend_feature, ggml_backend_reg_get_proc_address, ggml_backend_reg_t,
    };
    use std::ffi::CStr;

    type GetFeatures = unsafe extern "C" fn(ggml_backend_reg_t) -> *mut ggml_backend_feature;

    // SAFETY: a NUL-terminated name; the registry returns null when no CPU backend is
    // registered (a portable build that found none of its variants).
    let registry = unsafe { llama_cpp_sys_2::ggml_backend_reg_by_name(c"CPU".as_ptr()) };
    if registry.is_null() {
        return Vec::new();
    }
    // SAFETY: the registry pointer came from ggml and lives for the process; the name is
    // NUL-terminated. A backend without the entry point answers null.
    let address = unsafe {
        ggml_backend_reg_get_proc_address(registry, c"ggml_backend_get_features".as_ptr())
    };
    if address.is_null() {
        return Vec::new();
    }
    // SAFETY: ggml documents this entry point's signature as `ggml_backend_get_features_t`:
    // it takes the registry and returns an array of features ended by one with a null name.
    let get_features =
        unsafe { std::mem::transmute::<*mut std::ffi::c_void, GetFeatures>(address) };
    // SAFETY: as above; the array is static in the backend.
    let mut feature = unsafe { get_features(registry) };
    let mut names = Vec::new();
    while !feature.is_null() {
        // SAFETY: `feature` points into the array, at most at its terminating entry.
        let entry = unsafe { &*feature };
        if entry.name.is_null() {
            break;
        }
        // SAFETY: ggml's names and values are NUL-terminated static strings.
        let (name, value) = unsafe { (CStr::from_ptr(entry.name), CStr::from_ptr(entry.value)) };
        if value.to_bytes() != b"0" {
            names.push(name.to_string_lossy().to_lowercase());
        }
        // SAFETY: the entry was not the terminator, so the next one is in the array.
        feature = unsafe { feature.add(1) };
    }
    names
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
