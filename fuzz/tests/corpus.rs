//! Every committed input of every fuzz target, replayed through it: the
//! corpora (`fuzz/corpus/<target>/`, coverage kept by `make fuzz`) and the
//! crashes found so far (`fuzz/regressions/<target>/`). Seconds, in `make unit`.

use std::path::{Path, PathBuf};

use mesh_auth_fuzz::TARGETS;

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn corpora_and_regressions_replay() {
    let mut total = 0;
    let mut failed = Vec::new();
    for (name, target) in TARGETS {
        for kind in ["corpus", "regressions"] {
            for file in inputs(&root().join(kind).join(name)) {
                let data = std::fs::read(&file).unwrap();
                // Every failing file is named, not only the first.
                if std::panic::catch_unwind(|| target(&data)).is_err() {
                    failed.push(format!("{name}: {}", file.display()));
                }
                total += 1;
            }
        }
    }
    println!("{total} inputs replayed");
    assert!(failed.is_empty(), "failing inputs:\n{}", failed.join("\n"));
}

#[test]
fn seeds_replay() {
    for (name, inputs) in mesh_auth_fuzz::seeds::all() {
        let (_, target) = TARGETS.iter().find(|(n, _)| *n == name).unwrap();
        for input in inputs {
            target(&input);
        }
    }
}

#[test]
fn every_target_has_a_corpus_and_a_libfuzzer_binary() {
    let manifest = std::fs::read_to_string(root().join("libfuzzer/Cargo.toml")).unwrap();
    for (name, _) in TARGETS {
        assert!(
            !inputs(&root().join("corpus").join(name)).is_empty(),
            "fuzz/corpus/{name} is empty"
        );
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "no [[bin]] {name} in fuzz/libfuzzer/Cargo.toml"
        );
        assert!(
            root()
                .join(format!("libfuzzer/fuzz_targets/{name}.rs"))
                .is_file()
        );
    }
}
