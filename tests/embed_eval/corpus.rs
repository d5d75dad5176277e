//! The bad-input corpus (issue 18, item 3), generated here: broken models,
//! images, videos, databases and configs through the real `vireid` binary.
//! Each must give a clear error that names the thing, a non-zero exit that is
//! not a panic (101), and no hang (60 s under coreutils `timeout`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::embed_onnx::models;

struct Case {
    what: &'static str,
    args: Vec<String>,
    /// Every one of these appears in stderr.
    names: Vec<String>,
}

fn run(case: &Case) -> Result<(), String> {
    run_as(&[], case)
}

/// `run`, with `prefix` before the binary (`setpriv …` to drop root).
fn run_as(prefix: &[&str], case: &Case) -> Result<(), String> {
    let out = Command::new("timeout")
        .arg("60")
        .args(prefix)
        .arg(env!("CARGO_BIN_EXE_vireid"))
        .args(["--log", "warn"])
        .args(&case.args)
        .output()
        .map_err(|e| format!("cannot run vireid: {e}"))?;
    let err = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    if code == Some(124) {
        return Err(format!("{}: hung for 60 s", case.what));
    }
    if out.status.success() {
        return Err(format!("{} {:?}: exit 0, expected a refusal", case.what, case.args));
    }
    if code == Some(101) || err.contains("panicked") {
        return Err(format!("{}: panicked: {err}", case.what));
    }
    if let Some(missing) = case.names.iter().find(|n| !err.contains(n.as_str())) {
        return Err(format!("{}: the error does not name `{missing}`: {err}", case.what));
    }
    Ok(())
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A PNG whose header claims `w`×`h` pixels, with no pixel data behind it.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    v.extend(w.to_be_bytes());
    v.extend(h.to_be_bytes());
    v.extend([8, 2, 0, 0, 0, 0, 0, 0, 0]); // 8-bit RGB, CRC (wrong, on purpose)
    v
}

fn junk(n: usize) -> Vec<u8> {
    (0..n as u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect()
}

#[test]
fn every_bad_input_is_a_clear_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good_images = d.join("good");
    std::fs::create_dir(&good_images).unwrap();
    image::RgbImage::from_pixel(16, 32, image::Rgb([200, 40, 40])).save(good_images.join("a.png")).unwrap();
    let tiny = models().join("tiny.onnx");
    let write = |name: &str, bytes: &[u8]| -> PathBuf {
        let p = d.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let mut cases = vec![];

    // Models.
    let real = std::fs::read(&tiny).unwrap();
    for (name, bytes) in
        [("random.onnx", junk(4096)), ("empty.onnx", vec![]), ("truncated.onnx", real[..real.len() / 3].to_vec())]
    {
        let m = write(name, &bytes);
        cases.push(Case {
            what: "model",
            args: vec![
                "embed".into(),
                "--model".into(),
                s(&m),
                "--images".into(),
                s(&good_images),
                "--out".into(),
                s(&d.join("f.npy")),
            ],
            names: vec![name.into()],
        });
    }
    cases.push(Case {
        what: "model without vireid.* metadata",
        args: vec![
            "adapt".into(),
            "--config".into(),
            s(&write("none.toml", b"")),
            "--model".into(),
            s(&models().join("tiny_nometa.onnx")),
            "--out".into(),
            s(&d.join("x.onnx")),
        ],
        names: vec!["tiny_nometa.onnx".into(), "metadata".into()],
    });

    // Images: corrupt, empty, text named .png, a header claiming 60000×60000 pixels.
    for (name, bytes) in [
        ("corrupt.jpg", [b"\xff\xd8\xff\xe0".to_vec(), junk(3000)].concat()),
        ("empty.png", vec![]),
        ("text.png", b"this is not an image\n".to_vec()),
        ("huge.png", png_header(60_000, 60_000)),
    ] {
        let img = write(name, &bytes);
        cases.push(Case {
            what: "enrolment image",
            args: vec![
                "enrol".into(),
                "--model".into(),
                s(&tiny),
                "--label".into(),
                "x".into(),
                "--image".into(),
                s(&img),
                "--state-dir".into(),
                s(&d.join("state-enrol")),
            ],
            names: vec![name.into()],
        });
    }

    // Videos: empty, text, junk after an MP4 header.
    for (name, bytes) in [
        ("empty.mp4", vec![]),
        ("text.mp4", b"not a video\n".to_vec()),
        ("junk.mkv", [b"\x1a\x45\xdf\xa3".to_vec(), junk(30000)].concat()),
    ] {
        let v = write(name, &bytes);
        cases.push(Case {
            what: "video",
            args: vec![
                "detect".into(),
                "--input".into(),
                s(&v),
                "--modality".into(),
                "rgb".into(),
                "--jsonl".into(),
                "-".into(),
            ],
            names: vec![name.into()],
        });
    }

    // Databases: corrupt, foreign, from a newer vireid.
    let db_dir = |name: &str, make: &dyn Fn(&Path)| -> PathBuf {
        let p = d.join(name);
        std::fs::create_dir(&p).unwrap();
        make(&p.join("gallery.db"));
        p
    };
    let corrupt = db_dir("db-corrupt", &|p| std::fs::write(p, junk(8192)).unwrap());
    let foreign = db_dir("db-foreign", &|p| {
        rusqlite::Connection::open(p).unwrap().execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);").unwrap()
    });
    let newer = db_dir("db-newer", &|p| {
        rusqlite::Connection::open(p).unwrap().execute_batch("PRAGMA user_version = 999;").unwrap()
    });
    for (state, needle) in [(&corrupt, "corrupt"), (&foreign, "not a vireid gallery"), (&newer, "999")] {
        cases.push(Case {
            what: "database",
            args: vec!["gallery".into(), "list".into(), "--state-dir".into(), s(state)],
            names: vec!["gallery.db".into(), needle.into()],
        });
    }

    // Configs: duplicate camera names, a wrong type, an out-of-range value, an unknown key, a missing file.
    let cam = |name: &str| format!("[[camera]]\nname = \"{name}\"\nmodality = \"rgb\"\nsource = \"test:\"\n");
    for (name, text, needle) in [
        ("dup.toml", format!("{}{}", cam("gate"), cam("gate")), "gate"),
        ("type.toml", format!("{}[gallery]\nexemplars_per_modality = \"many\"\n", cam("a")), "exemplars_per_modality"),
        ("range.toml", format!("{}[gallery]\nretention_days = -3\n", cam("a")), "retention_days"),
        ("unknown.toml", format!("{}[gallery]\nretension_days = 3\n", cam("a")), "retension_days"),
        // A box that stores sightings loads its model at start: check-config loads it too.
        (
            "model.toml",
            format!("{}[embed]\nmodel = \"/no/such/model.onnx\"\n[events]\njsonl = \"-\"\n", cam("a")),
            "/no/such/model.onnx",
        ),
    ] {
        let c = write(name, text.as_bytes());
        cases.push(Case {
            what: "config",
            args: vec!["check-config".into(), "--config".into(), s(&c)],
            names: vec![needle.into()],
        });
    }

    let mut failures: Vec<String> = cases.iter().filter_map(|c| run(c).err()).collect();

    // A read-only database: enrolment must refuse, naming the file. Root
    // ignores file modes, so as root the case runs as `nobody` (setpriv).
    use std::os::unix::fs::PermissionsExt;
    let ro = d.join("db-readonly");
    let tiny = {
        let copy = d.join("tiny-copy.onnx");
        std::fs::copy(&tiny, &copy).unwrap();
        copy
    };
    let enrol = |state: &Path| -> Vec<String> {
        [
            "enrol",
            "--model",
            &s(&tiny),
            "--label",
            "x",
            "--image",
            &s(&good_images.join("a.png")),
            "--state-dir",
            &s(state),
        ]
        .map(String::from)
        .to_vec()
    };
    let made = Command::new(env!("CARGO_BIN_EXE_vireid")).args(["--log", "warn"]).args(enrol(&ro)).output().unwrap();
    assert!(made.status.success(), "enrol: {}", String::from_utf8_lossy(&made.stderr));
    let mode = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    mode(d, 0o755);
    mode(&ro.join("gallery.db"), 0o444);
    mode(&ro, 0o555);
    // SAFETY: reads the process's effective user id.
    let root = unsafe { libc::geteuid() } == 0;
    let prefix: &[&str] = if root { &["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] } else { &[] };
    // `nobody` must be able to run the binary (a checkout under a private
    // directory would not let it); otherwise the case cannot be made here.
    // It must also be able to read ONNX Runtime, which the case loads.
    let ort = std::env::var("ORT_DYLIB_PATH")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/.deps/onnxruntime/libonnxruntime.so").into());
    let as_case_user = |cmd: &[&str]| {
        let argv: Vec<&str> = prefix.iter().chain(cmd).copied().collect();
        Command::new(argv[0]).args(&argv[1..]).output().is_ok_and(|o| o.status.success())
    };
    let runs = as_case_user(&[env!("CARGO_BIN_EXE_vireid"), "--version"]) && as_case_user(&["test", "-r", &ort]);
    if runs {
        let case =
            Case { what: "read-only database", args: enrol(&ro), names: vec!["gallery.db".into(), "readonly".into()] };
        failures.extend(run_as(prefix, &case).err());
    } else {
        eprintln!(
            "read-only database case not made: user nobody cannot run {} or read {ort}",
            env!("CARGO_BIN_EXE_vireid")
        );
    }
    mode(&ro, 0o755);
    assert!(failures.is_empty(), "{} of {} corpus cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
