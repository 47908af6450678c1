//! Decompresses the committed real registry files (`data/real/**/*.gz` at
//! the workspace root) into `OUT_DIR/real-data`, where
//! [`real_data`](../src/lib.rs) finds them: every test reads the same
//! files, and none has to find a folder outside the repository.

use std::io::Read as _;
use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/real");
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("real-data");
    println!("cargo:rerun-if-changed={}", source.display());
    decompress_tree(&source, &source, &out)?;
    Ok(())
}

fn decompress_tree(root: &Path, dir: &Path, out: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        println!("cargo:rerun-if-changed={}", path.display());
        if path.is_dir() {
            decompress_tree(root, &path, out)?;
            continue;
        }
        let relative = path.strip_prefix(root).expect("inside the root");
        let target = out.join(relative);
        std::fs::create_dir_all(target.parent().expect("a file has a parent"))?;
        if path.extension().is_some_and(|ext| ext == "gz") {
            let mut bytes = Vec::new();
            flate2::read::GzDecoder::new(std::fs::File::open(&path)?).read_to_end(&mut bytes)?;
            std::fs::write(target.with_extension(""), bytes)?;
        } else {
            std::fs::copy(&path, &target)?;
        }
    }
    Ok(())
}
