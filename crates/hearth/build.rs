//! A portable build (the `portable` feature) links llama.cpp and ggml as shared libraries that
//! ship beside the binary: the binary looks for them in its own directory.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_PORTABLE").is_some() {
        println!("cargo:rustc-link-arg-bins=-Wl,-rpath,$ORIGIN");
    }
}
