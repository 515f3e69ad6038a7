//! Lesson files: a lesson exported from one server and imported on another is the same
//! lesson with the same pictures and videos; damaged, foreign and hostile files are refused
//! with a clear error and write nothing.

use std::io::{Cursor, Read, Write};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::harness::{expect_error, spawn_app, spawn_with, Teacher, TestApp};
use crate::media::{chunk_rows, file, held_request, leftovers, upload, PNG, WEBM};

fn sha256(bytes: &[u8]) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
}

async fn uploaded(app: &TestApp, t: &Teacher, bytes: &[u8]) -> String {
    let res = upload(app, t, bytes.to_vec(), "application/octet-stream").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub(crate) async fn export(app: &TestApp, t: &Teacher, id: &str) -> reqwest::Response {
    app.as_teacher(Method::GET, &format!("/api/lessons/{id}/export"), t)
        .send()
        .await
        .unwrap()
}

pub(crate) async fn import(app: &TestApp, t: &Teacher, bytes: Vec<u8>) -> reqwest::Response {
    app.as_teacher(Method::POST, "/api/lessons/import", t)
        .header("content-type", "application/zip")
        .body(bytes)
        .send()
        .await
        .unwrap()
}

/// A lesson of every kind of slide, with a picture shown twice and a video.
async fn full_lesson(app: &TestApp, t: &Teacher) -> (Value, Vec<u8>, Vec<u8>) {
    let picture = file(PNG, 40_000);
    let video = file(WEBM, 2_500_000); // several stored chunks
    let picture_id = uploaded(app, t, &picture).await;
    let video_id = uploaded(app, t, &video).await;
    let lesson = app
        .create_lesson(
            t,
            json!({"title": "Fractions — week 3 ½", "folder": "Year 7 / Maths", "slides": [
                {"kind": "text", "title": "Welcome", "body": "# Hello\n*today*", "notes": "smile"},
                {"kind": "image", "title": "A pie", "media": picture_id, "notes": "point at it"},
                {"kind": "video", "title": "Watch", "media": video_id},
                {"kind": "question", "title": "What is ½ + ¼?", "answer": "¾", "body": "Think"},
                {"kind": "timer", "title": "Work", "seconds": 300, "body": "In pairs"},
                {"kind": "image", "title": "The pie again", "media": picture_id},
            ]}),
        )
        .await;
    (lesson, picture, video)
}

/// What a lesson is, ids aside.
fn without_ids(lesson: &Value) -> Value {
    let mut slides = lesson["slides"].clone();
    for slide in slides.as_array_mut().unwrap() {
        slide.as_object_mut().unwrap().remove("id");
    }
    json!({"title": lesson["title"], "folder": lesson["folder"], "slides": slides})
}

#[tokio::test]
async fn a_lesson_exported_from_one_server_imports_identically_on_another() {
    let school_a = spawn_app().await;
    let school_b = spawn_app().await;
    let alice = school_a.register("alice@a.school.org").await;
    let bob = school_b.register("bob@b.school.org").await;
    let (lesson, picture, video) = full_lesson(&school_a, &alice).await;

    let res = export(&school_a, &alice, lesson["id"].as_str().unwrap()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/zip");
    assert_eq!(
        res.headers()["content-disposition"],
        "attachment; filename=\"Fractions-week-3.classcast.zip\""
    );
    let bytes = res.bytes().await.unwrap().to_vec();

    // One manifest and each file once, named by its hash.
    let mut zip = ZipArchive::new(Cursor::new(bytes.clone())).unwrap();
    let mut names: Vec<String> = zip.file_names().map(str::to_owned).collect();
    names.sort();
    let mut expected = vec![
        "lesson.json".to_owned(),
        format!("media/{}.png", sha256(&picture)),
        format!("media/{}.webm", sha256(&video)),
    ];
    expected.sort();
    assert_eq!(names, expected);
    let mut manifest = String::new();
    zip.by_name("lesson.json")
        .unwrap()
        .read_to_string(&mut manifest)
        .unwrap();
    let manifest: Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(
        (&manifest["format"], &manifest["version"]),
        (&json!("classcast-lesson"), &json!(1))
    );

    let res = import(&school_b, &bob, bytes.clone()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(res.headers().contains_key("etag"));
    let imported: Value = res.json().await.unwrap();
    assert_ne!(imported["id"], lesson["id"]);
    assert_eq!(without_ids(&imported), without_ids(&lesson));
    assert_eq!(
        imported["folder"], "Year 7 / Maths",
        "the folder travels along"
    );
    let fetched = school_b
        .get_json(
            &format!("/api/lessons/{}", imported["id"].as_str().unwrap()),
            &bob,
        )
        .await;
    assert_eq!(without_ids(&fetched), without_ids(&lesson));
    for original in [&picture, &video] {
        let res = school_b
            .request(Method::GET, &format!("/api/media/{}", sha256(original)))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            &res.bytes().await.unwrap()[..],
            &original[..],
            "byte for byte"
        );
    }

    // Importing again makes a second lesson; the files are stored once.
    let chunks = chunk_rows(&school_b).await;
    let res = import(&school_b, &bob, bytes).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(school_b.lesson_count(&bob).await, 2);
    assert_eq!(chunk_rows(&school_b).await, chunks);
    assert_eq!(leftovers(&school_b), 0);
    assert_eq!(leftovers(&school_a), 0);
}

#[tokio::test]
async fn only_the_owner_exports_a_lesson() {
    let app = spawn_app().await;
    let owner = app.register("owner@school.org").await;
    let other = app.register("other@school.org").await;
    let (lesson, _, _) = full_lesson(&app, &owner).await;
    let id = lesson["id"].as_str().unwrap();
    expect_error(
        export(&app, &other, id).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let res = app
        .request(Method::GET, &format!("/api/lessons/{id}/export"))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let res = app
        .request(Method::POST, "/api/lessons/import")
        .body(vec![1, 2, 3])
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

/// A zip of `entries` (name, bytes), each stored or deflated.
fn zip_of(entries: &[(&str, &[u8], CompressionMethod)]) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes, method) in entries {
        let options = SimpleFileOptions::default().compression_method(*method);
        zip.start_file(*name, options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// `zip` with every `from` in its names made `to` (of the same length): a name twice, which
/// zip writers refuse to make.
fn twice_named(mut zip: Vec<u8>, from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    while let Some(at) = zip.windows(from.len()).position(|w| w == from.as_bytes()) {
        zip[at..at + to.len()].copy_from_slice(to.as_bytes());
    }
    zip
}

fn manifest(title: &str, slides: Value, media: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "format": "classcast-lesson", "version": 1, "title": title, "slides": slides, "media": media
    }))
    .unwrap()
}

const STORED: CompressionMethod = CompressionMethod::Stored;
const DEFLATED: CompressionMethod = CompressionMethod::Deflated;

#[tokio::test]
async fn damaged_foreign_and_hostile_files_are_refused_and_write_nothing() {
    let app = spawn_with(|c| c.media_max_mib = Some(1)).await;
    let t = app.register("careful@school.org").await;
    let picture = file(PNG, 5_000);
    let id = sha256(&picture);
    let picture_slide = json!([{"kind": "image", "media": id}]);
    let picture_list = json!([{"id": id, "type": "image/png", "size": 5_000}]);
    let good_manifest = manifest("Good", picture_slide.clone(), picture_list.clone());
    let picture_name = format!("media/{id}.png");
    let good = zip_of(&[
        ("lesson.json", &good_manifest, DEFLATED),
        (&picture_name, &picture, STORED),
    ]);

    // Half a file, and a flipped byte inside the stored picture (its checksum fails).
    let truncated = good[..good.len() / 2].to_vec();
    let mut flipped = good.clone();
    let at = flipped.windows(PNG.len()).position(|w| w == PNG).unwrap();
    flipped[at + 100] ^= 0xff;

    // A deflated entry that unpacks far past the limit per file (50 MiB of zeros in ~50 KiB).
    let zeros = vec![0u8; 50 << 20];
    let bomb_id = sha256(&zeros);
    let bomb = zip_of(&[
        (
            "lesson.json",
            &manifest(
                "Bomb",
                json!([{"kind": "image", "media": bomb_id}]),
                json!([{"id": bomb_id, "type": "image/png", "size": 10}]),
            ),
            DEFLATED,
        ),
        (&format!("media/{bomb_id}.png"), &zeros, DEFLATED),
    ]);
    assert!(bomb.len() < 1 << 20);

    let other = file(PNG, 5_001);
    let many: Vec<(String, Vec<u8>)> = (0..600).map(|i| (format!("x{i}"), vec![])).collect();
    let many: Vec<(&str, &[u8], CompressionMethod)> = many
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice(), STORED))
        .collect();
    let html = b"<!doctype html><script>alert(1)</script>".to_vec();
    let html_id = sha256(&html);

    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "an HTML page",
            b"<html><body>hi</body></html>".to_vec(),
            "not_a_lesson_file",
            "not a classcast lesson file",
        ),
        (
            "half a file",
            truncated,
            "not_a_lesson_file",
            "not a classcast lesson file",
        ),
        ("a flipped byte", flipped, "damaged_lesson_file", "damaged"),
        (
            "a path out of the folder",
            zip_of(&[
                ("lesson.json", &good_manifest, DEFLATED),
                (&picture_name, &picture, STORED),
                ("../../etc/cron.d/evil", b"* * * * * root rm -rf /", STORED),
            ]),
            "unsafe_lesson_file",
            "../../etc/cron.d/evil",
        ),
        (
            "a picture named outside media/",
            zip_of(&[
                ("lesson.json", &good_manifest, DEFLATED),
                (&format!("media/../{id}.png"), &picture, STORED),
            ]),
            "unsafe_lesson_file",
            "not part of a lesson file",
        ),
        (
            "a zip bomb",
            bomb,
            "unsafe_lesson_file",
            "larger than the limit of 1 MiB",
        ),
        (
            "a file whose hash is not its name",
            zip_of(&[
                ("lesson.json", &good_manifest, DEFLATED),
                (&picture_name, &other, STORED),
            ]),
            "damaged_lesson_file",
            "SHA-256",
        ),
        (
            "a page posing as a picture under its true hash",
            zip_of(&[
                (
                    "lesson.json",
                    &manifest(
                        "Sneaky",
                        json!([{"kind": "image", "media": html_id}]),
                        json!([{"id": html_id, "type": "image/png", "size": html.len()}]),
                    ),
                    DEFLATED,
                ),
                (&format!("media/{html_id}.png"), &html, STORED),
            ]),
            "unsafe_lesson_file",
            "not a picture or video",
        ),
        (
            "an unknown field",
            zip_of(&[
                (
                    "lesson.json",
                    &manifest(
                        "Extra",
                        json!([{"kind": "image", "media": id, "colour": "red"}]),
                        picture_list.clone(),
                    ),
                    DEFLATED,
                ),
                (&picture_name, &picture, STORED),
            ]),
            "damaged_lesson_file",
            "colour",
        ),
        (
            "a file of another program",
            zip_of(&[("lesson.json", br#"{"slides": []}"#, DEFLATED)]),
            "not_a_lesson_file",
            "not a classcast lesson file",
        ),
        (
            "a newer format",
            zip_of(&[(
                "lesson.json",
                br#"{"format": "classcast-lesson", "version": 9}"#,
                DEFLATED,
            )]),
            "not_a_lesson_file",
            "newer classcast",
        ),
        (
            "a picture the file lacks",
            zip_of(&[("lesson.json", &good_manifest, DEFLATED)]),
            "damaged_lesson_file",
            "does not hold",
        ),
        (
            "a picture no slide shows",
            zip_of(&[
                (
                    "lesson.json",
                    &manifest("Spare", json!([]), json!([])),
                    DEFLATED,
                ),
                (&picture_name, &picture, STORED),
            ]),
            "unsafe_lesson_file",
            "no slide shows",
        ),
        ("600 files", zip_of(&many), "unsafe_lesson_file", "at most"),
        (
            "two manifests",
            twice_named(
                zip_of(&[
                    ("lesson.json", &good_manifest, DEFLATED),
                    ("lesson.jso2", &manifest("Other", json!([]), json!([])), DEFLATED),
                    (&picture_name, &picture, STORED),
                ]),
                "lesson.jso2",
                "lesson.json",
            ),
            "unsafe_lesson_file",
            "two files of the same name",
        ),
        (
            "a name other zip readers read as a path",
            zip_of(&[
                ("lesson.json", &good_manifest, DEFLATED),
                (&format!("{picture_name}/../../x.png"), &picture, STORED),
            ]),
            "unsafe_lesson_file",
            "not part of a lesson file",
        ),
        (
            "a picture under another kind's name",
            zip_of(&[
                (
                    "lesson.json",
                    &manifest(
                        "Renamed",
                        picture_slide.clone(),
                        json!([{"id": id, "type": "video/mp4", "size": 5_000}]),
                    ),
                    DEFLATED,
                ),
                (&picture_name, &picture, STORED),
            ]),
            "damaged_lesson_file",
            "type or size differs",
        ),
        (
            // Some KiB that unpack into 7 MiB of 600,000 slides.
            "a manifest of 600,000 slides",
            zip_of(&[(
                "lesson.json",
                format!(
                    r#"{{"format":"classcast-lesson","version":1,"title":"Huge","media":[],"slides":[{}]}}"#,
                    vec![r#"{"kind":""}"#; 600_000].join(",")
                )
                .as_bytes(),
                DEFLATED,
            )]),
            "damaged_lesson_file",
            "more than 500 items",
        ),
        (
            "a title of a million characters",
            zip_of(&[(
                "lesson.json",
                &manifest(&"a".repeat(1_000_000), json!([]), json!([])),
                DEFLATED,
            )]),
            "damaged_lesson_file",
            "at title: longer than 200 characters",
        ),
    ];
    for (what, bytes, code, says) in cases {
        let error = expect_error(
            import(&app, &t, bytes).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            code,
        )
        .await;
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(says), "{what}: {message}");
    }

    // A lesson that breaks a rule of lessons is refused field by field.
    let res = import(
        &app,
        &t,
        zip_of(&[(
            "lesson.json",
            &manifest("Timer", json!([{"kind": "timer", "seconds": 0}]), json!([])),
            DEFLATED,
        )]),
    )
    .await;
    let error = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(
        error["fields"]["lesson.json: slides[0].seconds"].is_string(),
        "{error}"
    );

    // Nothing of any of them was stored.
    assert_eq!(app.lesson_count(&t).await, 0);
    assert_eq!(chunk_rows(&app).await, 0);
    assert_eq!(leftovers(&app), 0);

    // The good file itself is fine.
    assert_eq!(import(&app, &t, good).await.status(), StatusCode::CREATED);
    assert_eq!(chunk_rows(&app).await, 1);
}

#[tokio::test]
async fn a_lesson_file_over_the_teachers_quota_is_refused_whole() {
    let big = spawn_app().await;
    let small = spawn_with(|c| {
        c.media_max_mib = Some(3);
        c.media_storage_mib = Some(3);
    })
    .await;
    let alice = big.register("alice@school.org").await;
    let bob = small.register("bob@school.org").await;
    let (lesson, _, _) = full_lesson(&big, &alice).await;
    let exported = export(&big, &alice, lesson["id"].as_str().unwrap())
        .await
        .bytes()
        .await
        .unwrap()
        .to_vec();
    // Bob already uses 1 MiB; the lesson's 2.5 MiB video and its picture do not fit in 3.
    let res = upload(&small, &bob, file(PNG, 1 << 20), "image/png").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = import(&small, &bob, exported).await;
    expect_error(res, StatusCode::FORBIDDEN, "storage_full").await;
    assert_eq!(small.lesson_count(&bob).await, 0);
    assert_eq!(chunk_rows(&small).await, 1);
    assert_eq!(leftovers(&small), 0);
}

#[tokio::test]
async fn files_unpacked_past_the_quota_stop_at_the_first_byte_over() {
    let app = spawn_with(|c| c.media_storage_mib = Some(1)).await;
    let t = app.register("bomb@school.org").await;
    // A picture that unpacks to 20 MiB from a few KiB, whose manifest says it is small: the
    // quota, not the size the file claims, stops it.
    let mut huge = PNG.to_vec();
    huge.resize(20 << 20, 0);
    let huge_id = sha256(&huge);
    let lying = zip_of(&[
        (
            "lesson.json",
            &manifest(
                "Small, it says",
                json!([{"kind": "image", "media": huge_id}]),
                json!([{"id": huge_id, "type": "image/png", "size": 5_000}]),
            ),
            DEFLATED,
        ),
        (&format!("media/{huge_id}.png"), &huge, DEFLATED),
    ]);
    assert!(lying.len() < 100 << 10);
    let error = expect_error(
        import(&app, &t, lying).await,
        StatusCode::FORBIDDEN,
        "storage_full",
    )
    .await;
    assert!(error["message"].as_str().unwrap().contains("of your 1 MiB"));
    // Said honestly, it is refused before anything is unpacked.
    let honest = zip_of(&[
        (
            "lesson.json",
            &manifest(
                "Large",
                json!([{"kind": "image", "media": huge_id}]),
                json!([{"id": huge_id, "type": "image/png", "size": 20 << 20}]),
            ),
            DEFLATED,
        ),
        (&format!("media/{huge_id}.png"), &huge, DEFLATED),
    ]);
    expect_error(
        import(&app, &t, honest).await,
        StatusCode::FORBIDDEN,
        "storage_full",
    )
    .await;
    assert_eq!(app.lesson_count(&t).await, 0);
    assert_eq!(chunk_rows(&app).await, 0);
    assert_eq!(leftovers(&app), 0);
}

#[tokio::test]
async fn a_file_the_teacher_holds_already_is_not_unpacked_again() {
    let app = spawn_with(|c| {
        c.media_max_mib = Some(1);
        c.media_storage_mib = Some(1);
    })
    .await;
    let t = app.register("again@school.org").await;
    let picture = file(PNG, 900_000);
    let id = uploaded(&app, &t, &picture).await;
    let lesson = app
        .create_lesson(
            &t,
            json!({"title": "Pie", "slides": [{"kind": "image", "media": id}]}),
        )
        .await;
    let exported = export(&app, &t, lesson["id"].as_str().unwrap())
        .await
        .bytes()
        .await
        .unwrap()
        .to_vec();
    // 0.9 of 1 MiB used: the file's picture costs nothing, as it is the teacher's already.
    let res = import(&app, &t, exported.clone()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(app.lesson_count(&t).await, 2);
    assert_eq!(chunk_rows(&app).await, 1);
    // Imported next to the lesson it came from, it is told apart by its title.
    let first: Value = res.json().await.unwrap();
    assert_eq!(first["title"], "Pie (copy)");
    let second: Value = import(&app, &t, exported).await.json().await.unwrap();
    assert_eq!(second["title"], "Pie (copy 2)");
}

#[tokio::test]
async fn lesson_files_on_their_way_take_a_bounded_room_per_teacher() {
    // A teacher may have their media quota and 64 MiB of lesson files on their way at once.
    let app = spawn_with(|c| c.media_storage_mib = Some(1)).await;
    let t = app.register("holding@school.org").await;
    let (a, release_a) = held_request(&app, &t, "/api/lessons/import", 50 << 20, vec![0; 40 << 20]);
    let (b, release_b) = held_request(&app, &t, "/api/lessons/import", 50 << 20, vec![0; 40 << 20]);
    // Both are held; whichever passes 65 MiB between them first is refused there and then.
    let first = tokio::time::timeout(crate::live::PATIENCE, async {
        tokio::select! {
            head = a => head.unwrap(),
            head = b => head.unwrap(),
        }
    })
    .await
    .expect("neither held lesson file was refused");
    assert!(first.starts_with("HTTP/1.1 429"), "{first}");
    assert!(
        first.contains("too_many_files") || first.to_lowercase().contains("retry-after: 10"),
        "{first}"
    );
    drop((release_a, release_b));
    // Its room is given back once the files are gone: an ordinary import works.
    crate::eventually::eventually!(
        crate::live::PATIENCE,
        std::time::Duration::from_millis(50),
        {
            match import(&app, &t, vec![0; 10]).await.status() {
                StatusCode::UNPROCESSABLE_ENTITY => Ok(()),
                other => Err(format!("an ordinary import answered {other}")),
            }
        }
    );
}
