//! Embeds the JSON schemas of `../schemas` (served at `<rootUrl>/schemas/...`, and the
//! input schemas requests are checked against) as a table of `(path, text)`, so adding a
//! schema file needs no list kept by hand.

use std::path::Path;

fn collect(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("schemas/ is readable").map(|e| e.expect("a directory entry").path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            let relative = path.strip_prefix(root).expect("under schemas/").to_string_lossy().replace('\\', "/");
            out.push((relative, path.canonicalize().expect("a schema file").to_string_lossy().into_owned()));
        }
    }
}

fn main() {
    // At run time, not `env!` at the build script's compile time: cargo reuses a compiled
    // build script for a checkout at another path that shares the target directory.
    let root = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("../schemas");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    for (_, path) in &files {
        println!("cargo:rerun-if-changed={path}");
    }
    let mut code = String::from("pub(super) static FILES: &[(&str, &str)] = &[\n");
    for (relative, path) in &files {
        code.push_str(&format!("    ({relative:?}, include_str!({path:?})),\n"));
    }
    code.push_str("];\n");
    std::fs::write(Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("schema_files.rs"), code).expect("OUT_DIR is writable");
}
