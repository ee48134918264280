use super::*;

#[test]
fn configmap_style_symlink_swap_is_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The layout kubelet writes: ..2026_1/file, ..data -> ..2026_1, file -> ..data/file
    std::fs::create_dir(d.join("..2026_1")).unwrap();
    std::fs::write(d.join("..2026_1/iam.yaml"), "one").unwrap();
    std::os::unix::fs::symlink("..2026_1", d.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/iam.yaml", d.join("iam.yaml")).unwrap();
    let yaml = |n: &str| n.ends_with(".yaml");
    let files = read_files(d, yaml).unwrap();
    assert_eq!(files.len(), 1, "dot entries are not files to load");
    assert_eq!(files[0].1, b"one");
    let mut t = ChangeTracker::new(fingerprint(&files));
    assert!(!t.changed(fingerprint(&read_files(d, yaml).unwrap())));

    // Atomic swap: new dir, then replace the ..data symlink.
    std::fs::create_dir(d.join("..2026_2")).unwrap();
    std::fs::write(d.join("..2026_2/iam.yaml"), "two").unwrap();
    std::os::unix::fs::symlink("..2026_2", d.join("..data_tmp")).unwrap();
    std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
    let files = read_files(d, yaml).unwrap();
    assert_eq!(files[0].1, b"two");
    assert!(t.changed(fingerprint(&files)));
    assert!(
        !t.changed(fingerprint(&files)),
        "each change is reported once"
    );
}

#[test]
fn renames_and_new_files_change_the_fingerprint() {
    let a = vec![(PathBuf::from("a.yaml"), b"x".to_vec())];
    let b = vec![(PathBuf::from("b.yaml"), b"x".to_vec())];
    let ab = vec![
        (PathBuf::from("a.yaml"), b"x".to_vec()),
        (PathBuf::from("b.yaml"), Vec::new()),
    ];
    assert_ne!(fingerprint(&a), fingerprint(&b));
    assert_ne!(fingerprint(&a), fingerprint(&ab));
}
