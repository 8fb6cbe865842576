//! Embeds the firewall lambda's Python sources (every top-level `*.py` of `bootstrap/lambda/`,
//! sorted) so the binary can build the lambda zip anywhere, without the repository.

use std::fmt::Write;
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bootstrap/lambda");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("bootstrap/lambda exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "py"))
        .collect();
    files.sort();
    let mut out = String::from(
        "/// (file name, contents) of the lambda's Python sources, sorted by name.\npub const LAMBDA_FILES: &[(&str, &[u8])] = &[\n",
    );
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f.file_name().unwrap().to_str().unwrap();
        writeln!(out, "    ({name:?}, include_bytes!({:?})),", f.display().to_string()).unwrap();
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("lambda_files.rs");
    std::fs::write(dest, out).unwrap();
}
