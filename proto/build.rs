//! Compiles etcd's v3 API (unchanged packages, messages and field numbers) and Strata's peer
//! protocol with tonic. Both server and client stubs are generated: the store serves them, and
//! the apiserver, the bench tool and the tests call them.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/kv.proto",
        "proto/auth.proto",
        "proto/rpc.proto",
        "proto/peer.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .bytes(".")
        .compile_protos(&files, &["proto"])?;
    Ok(())
}
