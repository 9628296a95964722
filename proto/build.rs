//! Compiles `proto/dynamo.proto` with protox (a pure-Rust protobuf compiler),
//! so a fresh machine needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fds = protox::compile(["dynamo.proto"], ["proto"])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    println!("cargo:rerun-if-changed=proto/dynamo.proto");
    Ok(())
}
