//! Compiles `proto/*.proto`. protoc comes from the `protoc-bin-vendored` crate unless
//! `PROTOC` names one, so a fresh machine builds without installing anything.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PROTOC").is_none() {
        // SAFETY: build scripts are single-threaded; nothing else reads the environment now.
        unsafe { std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    }
    let protos = ["../../proto/peer.proto", "../../proto/admin.proto"];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    tonic_prost_build::configure().compile_protos(&protos, &["../../proto"])?;
    // etcd's API, for `keepr bench --protocol etcd`: only the client is needed.
    let etcd = "../../proto/etcd_kv.proto";
    println!("cargo:rerun-if-changed={etcd}");
    tonic_prost_build::configure()
        .build_server(false)
        .compile_protos(&[etcd], &["../../proto"])?;
    Ok(())
}
