//! Media over the API: uploads of every accepted kind round trip byte for byte, ranges,
//! types told from the bytes (a page named `.png` is refused), size and quota limits that
//! leave nothing behind, identical files stored once, and answers that can never run as a
//! page of this origin.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{expect_error, spawn_app, spawn_with, Teacher, TestApp};

/// `size` bytes that start with `magic` and go on with a pattern.
pub fn file(magic: &[u8], size: usize) -> Vec<u8> {
    let mut bytes = magic.to_vec();
    bytes.extend((0..size.saturating_sub(magic.len())).map(|i| (i * 7 % 251) as u8));
    bytes
}

pub const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
pub const JPEG: &[u8] = b"\xff\xd8\xff\xe0\0\x10JFIF";
pub const GIF: &[u8] = b"GIF89a\x01\0\x01\0";
pub const WEBP: &[u8] = b"RIFF\0\0\0\0WEBPVP8 ";
pub const MP4: &[u8] = b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2avc1mp41";
pub const WEBM: &[u8] =
    b"\x1a\x45\xdf\xa3\x01\0\0\0\0\0\0\x1f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84webm";

pub async fn upload(
    app: &TestApp,
    t: &Teacher,
    bytes: Vec<u8>,
    claimed: &str,
) -> reqwest::Response {
    app.as_teacher(Method::POST, "/api/media", t)
        .header("content-type", claimed)
        .body(bytes)
        .send()
        .await
        .unwrap()
}

/// Uploads a PNG of 1,000 bytes ([`file`]) as `t`; answers its id.
pub async fn upload_picture(app: &TestApp, t: &Teacher) -> String {
    let res = upload(app, t, file(PNG, 1_000), "image/png").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let picture: Value = res.json().await.unwrap();
    picture["id"].as_str().unwrap().to_owned()
}

/// Files (not directories) left in the data directory's uploads folder.
pub fn leftovers(app: &TestApp) -> usize {
    std::fs::read_dir(app.data_dir().join("uploads")).map_or(0, |d| d.count())
}

pub async fn chunk_rows(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM media_file_chunk").await
}

#[tokio::test]
async fn every_kind_round_trips_byte_for_byte_with_headers_that_keep_it_inert() {
    let app = spawn_app().await;
    let t = app.register("media@school.org").await;
    let kinds = [
        (PNG, "image/png", 10_000),
        (JPEG, "image/jpeg", 3_000_000), // several stored chunks
        (GIF, "image/gif", 500),
        (WEBP, "image/webp", 700),
        (MP4, "video/mp4", 1_048_576), // exactly one chunk
        (WEBM, "video/webm", 1_048_577),
    ];
    for (magic, media_type, size) in kinds {
        let bytes = file(magic, size);
        // The type a client claims does not matter.
        let res = upload(&app, &t, bytes.clone(), "application/octet-stream").await;
        assert_eq!(res.status(), StatusCode::CREATED, "{media_type}");
        let stored: Value = res.json().await.unwrap();
        assert_eq!(stored["media_type"], media_type);
        assert_eq!(stored["size"], size);
        let id = stored["id"].as_str().unwrap();
        assert_eq!(
            id,
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
        );

        let res = app
            .request(Method::GET, stored["url"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let header = |name: &str| res.headers()[name].to_str().unwrap().to_owned();
        assert_eq!(header("content-type"), media_type);
        assert_eq!(header("etag"), format!("\"{id}\""));
        assert_eq!(
            header("cache-control"),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert!(header("content-disposition").starts_with("attachment"));
        assert_eq!(
            header("content-security-policy"),
            "default-src 'none'; sandbox"
        );
        assert_eq!(header("accept-ranges"), "bytes");
        assert_eq!(res.bytes().await.unwrap().to_vec(), bytes, "{media_type}");
    }
    assert_eq!(leftovers(&app), 0, "no temporary file stays");
}

#[tokio::test]
async fn ranges_are_served_as_asked_across_chunks_and_refused_outside_the_file() {
    let app = spawn_app().await;
    let t = app.register("ranges@school.org").await;
    let bytes = file(MP4, 2_500_000);
    let stored: Value = upload(&app, &t, bytes.clone(), "video/mp4")
        .await
        .json()
        .await
        .unwrap();
    let url = stored["url"].as_str().unwrap();
    let size = bytes.len();
    let cases = [
        ("bytes=0-99", 0, 99),
        ("bytes=1048570-1048600", 1_048_570, 1_048_600), // across a stored chunk
        ("bytes=2000000-", 2_000_000, size - 1),
        ("bytes=-10", size - 10, size - 1),
    ];
    for (range, start, end) in cases {
        let res = app
            .request(Method::GET, url)
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            res.headers()["content-range"],
            format!("bytes {start}-{end}/{size}").as_str()
        );
        assert_eq!(
            res.bytes().await.unwrap().to_vec(),
            bytes[start..=end].to_vec(),
            "{range}"
        );
    }
    let res = app
        .request(Method::GET, url)
        .header("range", format!("bytes={size}-"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        res.headers()["content-range"],
        format!("bytes */{size}").as_str()
    );
    let res = app
        .request(Method::GET, url)
        .header(
            "if-none-match",
            format!("\"{}\"", stored["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn a_page_named_like_a_picture_is_refused_and_a_polyglot_stays_inert() {
    let app = spawn_app().await;
    let t = app.register("spoof@school.org").await;
    let page = b"<!doctype html><script>fetch('/api/me')</script>".to_vec();
    let res = upload(&app, &t, page, "image/png").await;
    expect_error(res, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media").await;
    let svg = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>".to_vec();
    let res = upload(&app, &t, svg, "image/svg+xml").await;
    expect_error(res, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media").await;
    assert_eq!(chunk_rows(&app).await, 0, "nothing stored");
    // A GIF that is also a page: stored as a GIF, served so it can never run as one.
    let mut polyglot = GIF.to_vec();
    polyglot.extend_from_slice(b"<html><script>fetch('/api/me')</script></html>");
    let stored: Value = upload(&app, &t, polyglot, "text/html")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stored["media_type"], "image/gif");
    let res = app
        .request(Method::GET, stored["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "image/gif");
    assert!(res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    assert!(res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("sandbox"));
}

#[tokio::test]
async fn files_over_the_limit_or_the_quota_are_refused_and_leave_nothing_behind() {
    let app = spawn_with(|c| {
        c.media_max_mib = Some(1);
        c.media_storage_mib = Some(2);
    })
    .await;
    let t = app.register("limits@school.org").await;
    let res = upload(&app, &t, file(PNG, 1_500_000), "image/png").await;
    expect_error(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    for i in 0..2u8 {
        let res = upload(&app, &t, file(&[PNG, &[i]].concat(), 900_000), "image/png").await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let res = upload(&app, &t, file(&[PNG, &[9]].concat(), 900_000), "image/png").await;
    let refused = expect_error(res, StatusCode::FORBIDDEN, "storage_full").await;
    assert!(refused["message"].as_str().unwrap().contains("MiB"));
    assert_eq!(chunk_rows(&app).await, 2, "only the two files that fit");
    assert_eq!(leftovers(&app), 0);
    // The same file again costs nothing: it is stored, and counted, once.
    let res = upload(&app, &t, file(&[PNG, &[0]].concat(), 900_000), "image/png").await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn identical_uploads_by_two_teachers_are_stored_once() {
    let app = spawn_app().await;
    let (a, b) = (
        app.register("a@school.org").await,
        app.register("b@school.org").await,
    );
    let bytes = file(JPEG, 1_500_000);
    let first: Value = upload(&app, &a, bytes.clone(), "image/jpeg")
        .await
        .json()
        .await
        .unwrap();
    let second: Value = upload(&app, &b, bytes, "image/jpeg")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["id"], second["id"]);
    assert_eq!(
        chunk_rows(&app).await,
        2,
        "a 1.5 MB file is two chunks, once"
    );
}

#[tokio::test]
async fn media_cannot_be_listed_or_guessed_and_uploading_needs_a_teacher() {
    let app = spawn_app().await;
    for path in [
        format!("/api/media/{}", "0".repeat(64)),
        "/api/media/../../classcast.db".into(),
        "/api/media/ABC".into(),
        "/api/media".into(),
    ] {
        let res = app.request(Method::GET, &path).send().await.unwrap();
        assert!(
            res.status() == StatusCode::NOT_FOUND || res.status() == StatusCode::METHOD_NOT_ALLOWED,
            "{path}: {}",
            res.status()
        );
    }
    let res = app
        .request(Method::POST, "/api/media")
        .body(file(PNG, 100))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_interrupted_upload_stores_nothing() {
    let app = spawn_app().await;
    let t = app.register("cut@school.org").await;
    let address = app.base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /api/media HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: image/png\r\nContent-Length: 3000000\r\n\r\n",
        t.token
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&file(PNG, 1_200_000)).await.unwrap();
    drop(socket); // the school's connection drops mid-file
                  // The server notices, removes its temporary file and stores no chunk.
    crate::eventually::eventually!(
        crate::live::PATIENCE,
        std::time::Duration::from_millis(20),
        {
            match leftovers(&app) {
                0 => Ok(()),
                _ => Err("the temporary file stays".to_owned()),
            }
        }
    );
    assert_eq!(chunk_rows(&app).await, 0);
}

/// A request whose body of `length` bytes stops after `sent` and is held there until
/// `release` is sent or dropped. The handle answers the response's head, once one comes.
pub fn held_request(
    app: &TestApp,
    t: &Teacher,
    path: &str,
    length: usize,
    sent: Vec<u8>,
) -> (
    tokio::task::JoinHandle<String>,
    tokio::sync::oneshot::Sender<()>,
) {
    let address = app.base.trim_start_matches("http://").to_owned();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n",
        t.token
    );
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let answer = tokio::spawn(async move {
        let socket = tokio::net::TcpStream::connect(&address).await.unwrap();
        let (mut read, mut write) = socket.into_split();
        // Written aside: a server that refuses stops reading, and the write would wait.
        let writer = tokio::spawn(async move {
            let _ = write.write_all(head.as_bytes()).await;
            let _ = write.write_all(&sent).await;
            let _ = released.await;
        });
        let mut answer = Vec::new();
        let mut buffer = [0; 4096];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = read.read(&mut buffer).await.unwrap();
            assert!(n > 0, "the connection closed without an answer");
            answer.extend_from_slice(&buffer[..n]);
        }
        writer.abort();
        String::from_utf8_lossy(&answer).into_owned()
    });
    (answer, release)
}

#[tokio::test]
async fn parallel_uploads_of_one_teacher_never_store_past_the_quota() {
    let app = spawn_with(|c| c.media_storage_mib = Some(1)).await;
    let t = app.register("parallel@school.org").await;
    // Eight files of 300,000 bytes at once: three fit in 1 MiB.
    let answers = futures_util::future::join_all((0..8u8).map(|i| {
        let (app, t) = (&app, &t);
        async move {
            let res = upload(app, t, file(&[PNG, &[i]].concat(), 300_000), "image/png").await;
            res.status()
        }
    }))
    .await;
    let stored = answers
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let full = answers
        .iter()
        .filter(|s| **s == StatusCode::FORBIDDEN)
        .count();
    assert_eq!((stored, full), (3, 5), "{answers:?}");
    assert_eq!(chunk_rows(&app).await, 3);
    assert_eq!(leftovers(&app), 0);
}

#[tokio::test]
async fn files_left_on_their_way_by_a_killed_server_are_cleared_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let uploads = dir.path().join("uploads");
    std::fs::create_dir_all(&uploads).unwrap();
    std::fs::write(uploads.join("0190a3c2-killed.part"), vec![0; 100_000]).unwrap();
    let server = crate::harness::Process::start(dir.path());
    let ready = reqwest::get(format!("{}/readyz", server.base))
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert!(
        std::fs::read_dir(&uploads).map_or(true, |mut d| d.next().is_none()),
        "the killed server's file is still there"
    );
}

/// A `multipart/form-data` body as an HTML form sends it: a text field, then the file.
fn form(file_name: Option<&str>, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----classcast-test-boundary-7d1f";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\nOur class\r\n"
    )
    .into_bytes();
    let disposition = match file_name {
        Some(name) => format!("form-data; name=\"file\"; filename=\"{name}\""),
        None => "form-data; name=\"file\"".to_owned(),
    };
    body.extend(
        format!(
            "--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: image/png\r\n\r\n"
        )
        .bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend(format!("\r\n--{boundary}--\r\n").bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn a_form_upload_stores_its_file_as_a_raw_upload_would() {
    let app = spawn_with(|c| c.media_max_mib = Some(3)).await;
    let t = app.register("form@school.org").await;
    let bytes = file(JPEG, 2_500_000); // larger than the JSON body limit, several chunks
    let (content_type, body) = form(Some("photo.png"), &bytes);
    let res = upload(&app, &t, body, &content_type).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let stored: Value = res.json().await.unwrap();
    assert_eq!(
        stored["media_type"], "image/jpeg",
        "told from the bytes, not the form"
    );
    assert_eq!(stored["size"], bytes.len());
    let res = app
        .request(Method::GET, stored["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(&res.bytes().await.unwrap()[..], &bytes[..]);

    // The same checks as a raw upload: a page is refused, so is a file over the limit.
    let (content_type, body) = form(Some("cat.png"), b"<!doctype html><script>1</script>");
    let res = upload(&app, &t, body, &content_type).await;
    expect_error(res, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media").await;
    let (content_type, body) = form(Some("big.png"), &file(PNG, 3_200_000));
    let res = upload(&app, &t, body, &content_type).await;
    expect_error(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    // A form without a file, and one that is cut off.
    let (content_type, body) = form(None, &bytes[..100]);
    let res = upload(&app, &t, body, &content_type).await;
    expect_error(res, StatusCode::BAD_REQUEST, "no_file").await;
    let (content_type, body) = form(Some("cut.png"), &file(PNG, 10_000));
    let res = upload(&app, &t, body[..5_000].to_vec(), &content_type).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(chunk_rows(&app).await, 3, "only the first file");
    assert_eq!(leftovers(&app), 0);
}

/// A `width`×`height` PNG of coloured noise, which compresses as badly as a photo.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let picture = image::RgbImage::from_fn(width, height, |x, y| {
        let n =
            (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)).wrapping_mul(2_246_822_519);
        image::Rgb([(n >> 8) as u8, (n >> 16) as u8, (n >> 24) as u8])
    });
    let mut bytes = std::io::Cursor::new(Vec::new());
    picture
        .write_to(&mut bytes, image::ImageFormat::Png)
        .unwrap();
    bytes.into_inner()
}

async fn preview_rows(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM media_preview").await
}

#[tokio::test]
async fn a_large_picture_gets_a_small_preview_made_once() {
    let app = spawn_app().await;
    let t = app.register("previews@school.org").await;
    let photo = png(1200, 800);
    let res = upload(&app, &t, photo.clone(), "image/png").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/media/{id}/preview");
    let res = app.request(Method::GET, &path).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert!(res.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    let etag = res.headers()["etag"].clone();
    let bytes = res.bytes().await.unwrap();
    assert!(bytes.len() < photo.len() / 4, "{} bytes", bytes.len());
    let small = image::load_from_memory(&bytes).unwrap();
    assert_eq!(
        (small.width(), small.height()),
        (480, 320),
        "the shape kept"
    );
    let res = app
        .request(Method::GET, &path)
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);

    // Uploaded again, by someone else too: still one preview.
    let other = app.register("previews2@school.org").await;
    for who in [&t, &other] {
        let res = upload(&app, who, photo.clone(), "image/png").await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    assert_eq!(preview_rows(&app).await, 1);
}

#[tokio::test]
async fn a_picture_without_a_preview_stands_for_itself_and_a_video_has_none() {
    let app = spawn_app().await;
    let t = app.register("nopreview@school.org").await;
    // Small enough to be its own preview; and one whose header claims 100,000 pixels a
    // side (a decompression bomb): the decoder's limits refuse it, the upload still works.
    let mut bomb = png(2, 2);
    bomb[16..24].copy_from_slice(&[0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0]);
    let mut crc = flate2::Crc::new();
    crc.update(&bomb[12..29]); // the header chunk's type and data
    bomb[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for picture in [png(300, 200), bomb] {
        let res = upload(&app, &t, picture, "image/png").await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let id = res.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let res = no_redirects
            .get(format!("{}/api/media/{id}/preview", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(
            res.headers()["location"],
            format!("/api/media/{id}").as_str()
        );
    }
    assert_eq!(preview_rows(&app).await, 0);
    let res = upload(&app, &t, file(WEBM, 5_000), "video/webm").await;
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .request(Method::GET, &format!("/api/media/{id}/preview"))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app
        .request(
            Method::GET,
            &format!("/api/media/{}/preview", "0".repeat(64)),
        )
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn tiny_files_cost_what_they_take_and_uploads_are_paced() {
    // 1 MiB holds 488 files of 100 bytes once their rows are counted (2 KiB each), not 10,485.
    let app = spawn_with(|c| c.media_storage_mib = Some(1)).await;
    let t = app.register("tiny@school.org").await;
    let started = std::time::Instant::now();
    let mut stored = 0;
    let refusal = loop {
        let tiny = file(&[PNG, &(stored as u32).to_be_bytes()].concat(), 100);
        let res = upload(&app, &t, tiny, "image/png").await;
        if res.status() != StatusCode::CREATED {
            break res;
        }
        stored += 1;
        assert!(stored <= 488, "past the quota");
    };
    assert_eq!(stored, 488);
    expect_error(refusal, StatusCode::FORBIDDEN, "storage_full").await;
    // Every upload, stored or refused, new or not, spends one of 500 at once (one more comes
    // back every 5 s the test takes).
    let mut uploads = stored + 1;
    let res = loop {
        let again = file(&[PNG, &0u32.to_be_bytes()].concat(), 100);
        let res = upload(&app, &t, again, "image/png").await;
        if res.status() != StatusCode::CREATED {
            break res;
        }
        uploads += 1;
        assert!(uploads <= 1_000, "uploads are not paced");
    };
    let refilled = started.elapsed().as_secs() / 5 + 1;
    assert!(
        (500..=500 + refilled).contains(&(uploads as u64)),
        "{uploads} uploads before the refusal"
    );
    assert!(res.headers().contains_key("retry-after"));
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

#[tokio::test]
async fn a_teacher_uploading_many_pictures_delays_another_by_at_most_one_preview() {
    let app = spawn_app().await;
    let busy = app.register("busy@school.org").await;
    let other = app.register("other@school.org").await;
    let picture = |shade: u8| {
        let picture = image::RgbImage::from_pixel(3000, 3000, image::Rgb([shade, 80, 160]));
        let mut bytes = std::io::Cursor::new(Vec::new());
        picture
            .write_to(&mut bytes, image::ImageFormat::Png)
            .unwrap();
        bytes.into_inner()
    };
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    let finished = AtomicUsize::new(0);
    let one_stored = tokio::sync::Notify::new();
    let busy_uploads = futures_util::future::join_all((0..8).map(|shade| {
        let bytes = picture(shade);
        let (app, busy, finished, one_stored) = (&app, &busy, &finished, &one_stored);
        async move {
            let res = upload(app, busy, bytes, "image/png").await;
            assert_eq!(res.status(), StatusCode::CREATED);
            finished.fetch_add(1, SeqCst);
            one_stored.notify_one();
        }
    }));
    // Once one of the busy teacher's pictures is stored, the other seven wait in line.
    let other_upload = async {
        one_stored.notified().await;
        let res = upload(&app, &other, picture(200), "image/png").await;
        assert_eq!(res.status(), StatusCode::CREATED);
        finished.load(SeqCst)
    };
    let ((), ahead) = tokio::join!(
        async {
            busy_uploads.await;
        },
        other_upload
    );
    assert!(
        ahead <= 4,
        "the other teacher waited for {ahead} of the busy teacher's 8 pictures"
    );
    assert_eq!(preview_rows(&app).await, 9);
}
