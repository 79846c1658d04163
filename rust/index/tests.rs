//! The index as an adversary sees it: writers racing readers, crafted
//! manifests, and a bounded fuzz run over damaged segments and manifests.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::xxh3_64;

use super::*;
use crate::engine::Engine;
use crate::query::GrepOptions;
use crate::test_rng::Rng;

const FILES: &[(&str, &str)] = &[
    ("src/http_date.py", "import time\n\ndef parse_http_date(value):\n    return time.strptime(value)\n"),
    ("src/reader.py", "def readFile(path):\n    with open(path) as f:\n        return f.read()\n"),
    ("docs/notes.md", "# Notes\n\nTODO: parse http dates faster\nPM_RESUME and pm_resume\n"),
];

fn sample(tmp: &Path) -> (PathBuf, PathBuf) {
    let root = tmp.join("root");
    crate::test_tree::write_tree(&root, FILES.iter().copied());
    let dir = tmp.join("idx");
    Index::build(&root, &dir, &BuildOptions::default(), &mut |_, _, _| {}).unwrap();
    (root, dir)
}

/// Rewrites the manifest through `edit`, with a valid checksum (what a
/// crafted manifest carries).
fn craft(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join(manifest::FILE_NAME);
    let text = fs::read_to_string(&path).unwrap();
    let body = text.splitn(3, '\n').nth(2).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(body).unwrap();
    edit(&mut doc);
    let body = serde_json::to_string(&doc).unwrap();
    fs::write(&path, format!("lens index manifest\n{:016x}\n{body}", xxh3_64(body.as_bytes()))).unwrap();
}

fn corrupt_reason(dir: &Path) -> String {
    match Index::open(dir) {
        Err(Error::Corrupt { reason, .. }) => reason,
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok(_) => panic!("expected Corrupt, the index opened"),
    }
}

#[test]
fn open_retries_when_the_manifest_moves_on() {
    // Issue 9, item 3: a reader reads the manifest; before it maps the
    // segments, a writer commits a rebuild and removes them.
    let tmp = tempfile::tempdir().unwrap();
    let (root, dir) = sample(tmp.path());
    let (r, d) = (root.clone(), dir.clone());
    AFTER_MANIFEST_READ.with(|h| {
        *h.borrow_mut() = Some(Box::new(move || {
            fs::write(r.join("src/new.py"), "x = 1\n").unwrap();
            Index::build(&r, &d, &BuildOptions::default(), &mut |_, _, _| {}).unwrap();
        }))
    });
    let idx = Index::open(&dir).expect("a healthy index never reports corruption");
    assert_eq!(idx.snapshot().nfiles(), FILES.len() + 1);
}

#[test]
fn crafted_manifests_are_corrupt() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, dir) = sample(tmp.path());
    let good = fs::read(dir.join(manifest::FILE_NAME)).unwrap();
    let seg = |doc: &serde_json::Value| doc["segments"][0]["name"].as_str().unwrap().to_string();
    let restore = || fs::write(dir.join(manifest::FILE_NAME), &good).unwrap();

    // A name that walks out of the directory (the file it names even exists).
    let outside = tmp.path().join("other");
    fs::create_dir(&outside).unwrap();
    craft(&dir, |doc| {
        let name = seg(doc);
        fs::copy(dir.join(&name), outside.join(&name)).unwrap();
        let evil = format!("../other/{name}");
        let id = doc["identities"][&name].clone();
        doc["identities"][&evil] = id;
        doc["segments"][0]["name"] = evil.into();
    });
    assert!(corrupt_reason(&dir).contains("not a lens segment name"));
    restore();

    craft(&dir, |doc| {
        let entry = doc["segments"][0].clone();
        doc["segments"].as_array_mut().unwrap().push(entry);
    });
    assert!(corrupt_reason(&dir).contains("twice"));
    restore();

    craft(&dir, |doc| doc["segments"][0]["deleted"] = serde_json::json!([0, 0]));
    assert!(corrupt_reason(&dir).contains("strictly increasing"));
    restore();

    craft(&dir, |doc| doc["index_id"] = 12345.into());
    assert!(corrupt_reason(&dir).contains("another index"));
    restore();

    craft(&dir, |doc| {
        let name = seg(doc);
        doc["identities"][&name] = 1.into();
    });
    assert!(corrupt_reason(&dir).contains("identity"));
    restore();

    craft(&dir, |doc| {
        let name = seg(doc);
        doc["identities"].as_object_mut().unwrap().remove(&name);
    });
    assert!(corrupt_reason(&dir).contains("no identity"));
    restore();
    Index::open(&dir).unwrap();
}

fn damage(rng: &mut Rng, good: &[u8]) -> Vec<u8> {
    let mut d = good.to_vec();
    match rng.below(5) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(d.len());
                d[at] ^= 1 << rng.below(8);
            }
        }
        1 => d.truncate(rng.below(good.len())),
        2 => {
            let at = rng.below(d.len());
            let end = (at + 1 + rng.below(64)).min(d.len());
            for b in &mut d[at..end] {
                *b = rng.next() as u8;
            }
        }
        3 => {
            // Inside the header and section table, where the bounds live.
            let at = rng.below(d.len().min(256));
            d[at] = rng.next() as u8;
        }
        _ => d.extend((0..rng.below(100)).map(|_| rng.next() as u8)),
    }
    d
}

/// Opens `dir` and, if it opens, queries it: every hit must be text the
/// indexed file holds. Damage may give an error, never a panic or a lie.
fn exercise(dir: &Path, originals: &HashMap<&str, &str>) {
    let Ok(engine) = Engine::open(dir) else { return };
    let mut hits = Vec::new();
    if let Ok(r) = engine.search("parse http date", 10, None, true) {
        hits.extend(r.hits);
    }
    for native in [true, false] {
        if let Ok(h) = engine.grep("PM_RESUME|read", GrepOptions { regex: true, ..Default::default() }, None, native) {
            hits.extend(h);
        }
    }
    for h in hits {
        let original = originals.get(h.path.as_str()).unwrap_or_else(|| panic!("hit in unknown file {}", h.path));
        assert!(original.contains(&h.text), "hit text {:?} is not in {}", h.text, h.path);
    }
    let _ = engine.index.verify();
}

#[test]
fn fuzz_damaged_segments_and_manifests() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, dir) = sample(tmp.path());
    let originals: HashMap<&str, &str> = FILES.iter().copied().collect();
    let seg_path = fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("seg-"))
        .unwrap();
    let man_path = dir.join(manifest::FILE_NAME);
    let (good_seg, good_man) = (fs::read(&seg_path).unwrap(), fs::read(&man_path).unwrap());
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    for round in 0..400 {
        let (path, good) = if round % 2 == 0 { (&seg_path, &good_seg) } else { (&man_path, &good_man) };
        fs::write(path, damage(&mut rng, good)).unwrap();
        exercise(&dir, &originals);
        fs::write(path, good).unwrap();
    }
    exercise(&dir, &originals);
    Index::open(&dir).unwrap().verify().unwrap();
}
