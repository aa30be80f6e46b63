//! Embeds the advisory database: every `advisories/*.toml` file becomes an entry of
//! `EMBEDDED_ADVISORIES` (file name, contents), so adding an advisory needs no code change.

use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let dir = root.join("advisories");
    println!("cargo:rerun-if-changed=advisories");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut out = String::from("/// (file name, contents) of every advisory under `advisories/`.\n");
    out.push_str("pub static EMBEDDED_ADVISORIES: &[(&str, &str)] = &[\n");
    for path in &files {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        out.push_str(&format!("    ({name:?}, include_str!({:?})),\n", path.display().to_string()));
    }
    out.push_str("];\n");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    if let Err(e) = std::fs::write(out_dir.join("advisories.rs"), out) {
        panic!("cannot write the embedded advisory list: {e}");
    }
}
