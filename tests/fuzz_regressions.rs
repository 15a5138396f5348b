//! Replays the fuzz seed corpus (`fuzz/corpus/<target>/`) and every past fuzz finding
//! (`fuzz/regressions/<target>/`) through the very checks the fuzz targets run, without a fuzzing
//! engine: a finding fixed once stays fixed, and the seeds stay meaningful. docs/fuzzing.md tells
//! how to fuzz and how a finding becomes a file here.

#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for kind in ["corpus", "regressions"] {
        let dir = fuzz.join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a readable directory entry").path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn replay(target: &str) {
    let files = inputs(target);
    assert!(
        !files.is_empty(),
        "no seed corpus for {target} under fuzz/corpus/{target}"
    );
    let mut failed = Vec::new();
    for path in &files {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // Each input is checked on its own, so one failure names every failing file.
        if std::panic::catch_unwind(|| checks::check(target, &data)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} {target} inputs fail (panic messages above): {failed:#?}",
        failed.len(),
        files.len()
    );
}

#[test]
fn request_body_inputs() {
    replay("request_body");
}

#[test]
fn authorization_inputs() {
    replay("authorization");
}

#[test]
fn events_fold_inputs() {
    replay("events_fold");
}

#[test]
fn the_c2_vector_seeds_authenticate() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/authorization");
    for (seed, ak) in [
        ("vector_host_only", "globalaktest"),
        ("vector_content_headers", "globalaktest"),
        ("vector_query_non_ascii", "ak-Ops_01"),
        ("form_encoded_query", "ak-Ops_01"),
        ("mixed_case_headers", "globalaktest"),
    ] {
        let data = std::fs::read(fuzz.join(seed)).expect("the seed exists");
        assert_eq!(
            checks::authenticated_ak(&data).as_deref(),
            Some(ak),
            "{seed}"
        );
    }
    let tampered = std::fs::read(fuzz.join("tampered_body")).expect("the seed exists");
    assert_eq!(checks::authenticated_ak(&tampered), None);
}

#[test]
fn callback_body_inputs() {
    replay("callback_body");
}
