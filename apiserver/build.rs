//! Compiles Kubernetes' protobuf definitions (apiserver/proto, the wire format of
//! `application/vnd.kubernetes.protobuf` request bodies) into a descriptor set that the
//! protobuf decoder reads at run time. Only descriptors are generated: objects are decoded
//! dynamically into JSON, the apiserver's one internal representation.
use std::path::{Path, PathBuf};
use std::process::Command;

fn protos(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            protos(&p, out);
        } else if p.extension().is_some_and(|x| x == "proto") {
            out.push(p);
        }
    }
}

fn main() {
    let root = Path::new("proto");
    let mut files = Vec::new();
    protos(root, &mut files);
    files.sort();
    println!("cargo:rerun-if-changed=proto");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("k8s_descriptors.bin");
    let protoc = std::env::var("PROTOC").unwrap_or_else(|_| "protoc".into());
    let status = Command::new(&protoc)
        .arg("--include_imports")
        .arg(format!("--descriptor_set_out={}", out.display()))
        .arg("-I")
        .arg(root)
        .args(&files)
        .status()
        .unwrap_or_else(|e| panic!("running {protoc} (install protobuf-compiler): {e}"));
    assert!(status.success(), "{protoc} failed on apiserver/proto");
}
