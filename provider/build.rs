//! Generates the gRPC server code for Terraform's plugin protocol 6 and
//! go-plugin's controller services, with the vendored `protoc` (no system
//! protoc needed), and sets `KARPENTER_COMMIT` for `--version`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    build_info::emit();
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    let include = protoc_bin_vendored::include_path()?;
    let include = include
        .to_str()
        .ok_or("the vendored protoc's include path is not UTF-8")?;
    tonic_prost_build::configure()
        .build_client(false)
        .compile_with_config(
            config,
            &["proto/tfplugin6.proto", "proto/plugin.proto"],
            &["proto", include],
        )?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
