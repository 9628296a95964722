//! Compiles `proto/dynamo.proto` (our node's services) and `proto/etcd/kv.proto`
//! (the slice of etcd's v3 API the workbench's etcd client uses) with protox,
//! a pure-Rust protobuf compiler, so a fresh machine needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fds = protox::compile(["dynamo.proto", "etcd/kv.proto"], ["proto"])?;
    // A version's clock maps decode into B-trees, not hash maps: a replica
    // decodes every stored sibling's clock on each store and fetch, and
    // hashing each node name with SipHash, then copying the map into the
    // node's own B-tree clock, cost more than the B-tree inserts.
    tonic_prost_build::configure().btree_map(".dynamo.Version").compile_fds(fds)?;
    println!("cargo:rerun-if-changed=proto/dynamo.proto");
    println!("cargo:rerun-if-changed=proto/etcd/kv.proto");
    Ok(())
}
