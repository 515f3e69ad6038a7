//! PowerPoint and OpenDocument import: a `.pptx` or `.odp` sent to `POST
//! /api/lessons/import` is converted to a PDF by LibreOffice and imported as one; a lesson
//! file is never taken for a deck; a corrupt deck, a failed or crowded conversion and a
//! server without LibreOffice each say why and leave nothing behind. The decks are made here:
//! a flat OpenDocument file (plain XML) converted by `soffice` itself. Tests needing a real
//! LibreOffice skip, saying so, where it is missing (`scripts/test` installs it); the others
//! use a stand-in `soffice` script.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::deck::{deck, with_slide_numbers};
use crate::eventually::eventually;
use crate::harness::{expect_error, spawn_app, spawn_with, Teacher, TestApp};
use crate::lesson_files::export;
use crate::media::{chunk_rows, leftovers};
use crate::pdf_import::picture;
use crate::tools::{missing, Tool};

const PPTX: &str = "application/vnd.openxmlformats-officedocument.presentationml.presentation";
const ODP: &str = "application/vnd.oasis.opendocument.presentation";

/// The title of the deck made here.
pub const TITLE: &str = "Photosynthesis";
/// The slides' text and speaker notes of the deck made here.
pub const SLIDES: [(&str, &str); 3] = [
    ("Photosynthesis basics", "Ask who has a plant at home"),
    (
        "Chlorophyll absorbs light",
        "Mention red and blue wavelengths",
    ),
    ("Glucose and oxygen", "Homework page twelve"),
];

async fn import(app: &TestApp, t: &Teacher, bytes: Vec<u8>, kind: &str) -> reqwest::Response {
    app.as_teacher(Method::POST, "/api/lessons/import", t)
        .header("content-type", kind)
        .body(bytes)
        .send()
        .await
        .unwrap()
}

/// What `/config.json` says of office import.
async fn office_import(app: &TestApp) -> Value {
    app.public_json("/config.json").await["office_import"].clone()
}

/// A zip with the entries that make a file a PowerPoint deck, and nothing a program could
/// convert.
fn hollow_pptx() -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for name in ["[Content_Types].xml", "ppt/presentation.xml"] {
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(b"<not a presentation").unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// Nothing of a refused import stays: no lesson, no stored picture, no file on its way.
async fn nothing_left(app: &TestApp, t: &Teacher) {
    assert_eq!(app.lesson_count(t).await, 0);
    assert_eq!(chunk_rows(app).await, 0);
    assert_eq!(leftovers(app), 0);
}

#[tokio::test]
async fn a_pptx_and_an_odp_become_one_picture_slide_per_slide() {
    if missing(&[Tool::Soffice]) {
        return;
    }
    let app = spawn_app().await;
    assert_eq!(office_import(&app).await, true);
    let t = app.register("deck@school.org").await;
    let res = import(
        &app,
        &t,
        with_slide_numbers(&deck(TITLE, &SLIDES, "pptx")),
        PPTX,
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let lesson: Value = res.json().await.unwrap();
    // The deck's title is the PDF's, and so the lesson's.
    assert_eq!(lesson["title"], "Photosynthesis");
    let slides = lesson["slides"].as_array().unwrap();
    assert_eq!(slides.len(), 3);
    for (slide, (text, speaker_notes)) in slides.iter().zip(SLIDES) {
        assert_eq!(slide["kind"], "image");
        assert_eq!(slide["title"], text);
        // The speaker notes, from the deck's notes pages (without their page numbers), above
        // the slide's text.
        assert_eq!(slide["notes"], format!("{speaker_notes}\n\n{text}"));
        // LibreOffice's 16:9 page is a hair narrower (793.76 × 446.51 points, sizes being
        // kept in hundredths of a millimetre), and still fills a 4K board to the pixel.
        assert_eq!(picture(&app, slide).await.dimensions(), (3840, 2160));
    }
    // Found by a word of a slide, and by one of its speaker notes.
    for word in ["chlorophyll", "wavelengths"] {
        let found = app.get_json(&format!("/api/lessons?q={word}"), &t).await;
        assert_eq!(found["items"][0]["id"], lesson["id"], "{found}");
    }

    // An OpenDocument deck sent as a plain zip is told by its bytes, and converted.
    let res = import(&app, &t, deck(TITLE, &SLIDES, "odp"), "application/zip").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let odp: Value = res.json().await.unwrap();
    assert_eq!(odp["slides"].as_array().unwrap().len(), 3);
    assert_eq!(
        odp["slides"][2]["notes"],
        format!("{}\n\n{}", SLIDES[2].1, SLIDES[2].0)
    );
    // Each conversion's directory is gone.
    assert_eq!(leftovers(&app), 0);
}

#[tokio::test]
async fn a_lesson_file_is_never_taken_for_a_deck_nor_a_deck_for_a_lesson_file() {
    let app = spawn_app().await;
    let t = app.register("files@school.org").await;
    let made = app
        .create_lesson(
            &t,
            serde_json::json!({"title": "Fractions", "slides": [
                {"kind": "text", "title": "Halves", "body": "1/2"}]}),
        )
        .await;
    let file = export(&app, &t, made["id"].as_str().unwrap())
        .await
        .bytes()
        .await
        .unwrap()
        .to_vec();
    // Sent as a deck, a lesson file is refused: it is no presentation.
    let res = import(&app, &t, file.clone(), PPTX).await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "not_a_presentation").await;
    let res = import(&app, &t, b"PK\x03\x04 cut short".to_vec(), ODP).await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "not_a_presentation").await;
    // As what it is, it imports as a lesson file.
    let res = import(&app, &t, file, "application/zip").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let copy: Value = res.json().await.unwrap();
    assert_eq!(copy["slides"][0]["body"], "1/2");
    // And a deck sent as a zip goes to LibreOffice, not to the lesson file reader: on a
    // server without it, that says so.
    let app = spawn_with(|args| args.soffice = Some("/nowhere/soffice".into())).await;
    let t = app.register("files@school.org").await;
    let res = import(&app, &t, hollow_pptx(), "application/zip").await;
    expect_error(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "office_import_unavailable",
    )
    .await;
}

#[tokio::test]
async fn without_libreoffice_a_deck_is_refused_saying_how_to_save_a_pdf() {
    let app = spawn_with(|args| args.soffice = Some("/nowhere/soffice".into())).await;
    assert_eq!(office_import(&app).await, false);
    let t = app.register("nooffice@school.org").await;
    let res = import(&app, &t, hollow_pptx(), PPTX).await;
    let error = expect_error(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "office_import_unavailable",
    )
    .await;
    let message = error["message"].as_str().unwrap();
    for says in ["PowerPoint", "Keynote", "Google Slides", "PDF"] {
        assert!(message.contains(says), "{message}");
    }
    // One sentence.
    assert_eq!(message.matches(". ").count(), 0, "{message}");
    nothing_left(&app, &t).await;
}

#[tokio::test]
async fn a_corrupt_deck_is_refused_and_leaves_nothing() {
    if missing(&[Tool::Soffice]) {
        return;
    }
    let app = spawn_app().await;
    let t = app.register("corrupt@school.org").await;
    let res = import(&app, &t, hollow_pptx(), PPTX).await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "not_a_presentation").await;
    // A real deck cut in half is no zip any more.
    let mut half = deck(TITLE, &SLIDES, "pptx");
    half.truncate(half.len() / 2);
    let res = import(&app, &t, half, PPTX).await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "not_a_presentation").await;
    nothing_left(&app, &t).await;
}

/// A stand-in for `soffice` in `dir`: it writes its environment, limits and network there,
/// starts a process that would outlive it (as `soffice.bin` outlives `oosplash`) and writes
/// its pid, marks that it started, waits for `dir/go` and then dies as LibreOffice does when it runs
/// out of memory.
fn stand_in(dir: &Path) -> PathBuf {
    let script = dir.join("soffice");
    let dir = dir.display();
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nenv > {dir}/env\nulimit -v > {dir}/ulimit\nulimit -f > {dir}/fsize\n\
             cat /proc/net/dev > {dir}/net\n\
             sleep 600 & echo $! > {dir}/straggler\ntouch {dir}/started\n\
             while [ ! -e {dir}/go ]; do sleep 0.05; done\nkill -ABRT $$\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// Waits until the process the stand-in in `dir` left behind is gone: killed with its group.
async fn straggler_killed(dir: &Path) {
    let straggler = std::fs::read_to_string(dir.join("straggler")).unwrap();
    let stat = format!("/proc/{}/stat", straggler.trim());
    eventually!(Duration::from_secs(20), Duration::from_millis(50), {
        // Gone, or dead and not yet reaped by its new parent.
        match std::fs::read_to_string(&stat) {
            Ok(s)
                if !s
                    .rsplit_once(')')
                    .is_some_and(|(_, r)| r.trim_start().starts_with('Z')) =>
            {
                Err(format!("{stat} still runs: {s}"))
            }
            _ => Ok(()),
        }
    });
}

#[tokio::test]
async fn a_conversion_over_its_time_is_stopped_with_all_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let soffice = stand_in(dir.path());
    let app = spawn_with(|args| {
        args.soffice = Some(soffice);
        args.office_import_secs = Some(1);
    })
    .await;
    let t = app.register("slow@school.org").await;
    // The stand-in waits for a `go` that never comes.
    let res = import(&app, &t, hollow_pptx(), PPTX).await;
    expect_error(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "office_conversion_too_slow",
    )
    .await;
    straggler_killed(dir.path()).await;
    nothing_left(&app, &t).await;
}

#[tokio::test]
async fn a_conversion_runs_alone_without_the_servers_environment_and_its_failure_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let soffice = stand_in(dir.path());
    let app = spawn_with(|args| args.soffice = Some(soffice)).await;
    assert_eq!(office_import(&app).await, true);
    let t = app.register("sandbox@school.org").await;
    let first = {
        let request = app
            .as_teacher(Method::POST, "/api/lessons/import", &t)
            .header("content-type", PPTX)
            .body(hollow_pptx());
        tokio::spawn(async move { request.send().await.unwrap() })
    };
    let started = dir.path().join("started");
    eventually!(Duration::from_secs(20), Duration::from_millis(50), {
        if started.exists() {
            Ok(())
        } else {
            Err("the conversion never started".to_string())
        }
    });
    // One at a time: another teacher's deck meanwhile is asked to come back.
    let other = app.register("other@school.org").await;
    let res = import(&app, &other, hollow_pptx(), PPTX).await;
    assert_eq!(res.headers()["retry-after"], "15");
    expect_error(res, StatusCode::SERVICE_UNAVAILABLE, "office_import_busy").await;

    std::fs::write(dir.path().join("go"), b"").unwrap();
    let res = first.await.unwrap();
    straggler_killed(dir.path()).await;
    expect_error(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "office_conversion_failed",
    )
    .await;
    nothing_left(&app, &t).await;

    // LibreOffice saw a home of its own, in the conversion's directory, and no setting of
    // the server's; its address space was limited to 1 GiB, and each file it writes to one
    // upload's size (200 MiB, in the shell's blocks of 512 bytes).
    let env = std::fs::read_to_string(dir.path().join("env")).unwrap();
    let home = env.lines().find_map(|l| l.strip_prefix("HOME=")).unwrap();
    assert!(home.contains("/uploads/office-"), "{env}");
    assert!(!env.contains("CLASSCAST"), "{env}");
    assert!(!env.contains("CARGO"), "{env}");
    let ulimit = std::fs::read_to_string(dir.path().join("ulimit")).unwrap();
    assert_eq!(ulimit.trim(), "1048576");
    let fsize = std::fs::read_to_string(dir.path().join("fsize")).unwrap();
    assert_eq!(fsize.trim(), (200 * 1024 * 2).to_string());
    // It had no network but a loopback of its own (this machine allows user namespaces, as
    // Debian does by default): a linked picture cannot reach the school's network.
    let net = std::fs::read_to_string(dir.path().join("net")).unwrap();
    let interfaces: Vec<&str> = net
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(interfaces, ["lo"], "{net}");
}
