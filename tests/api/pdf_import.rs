//! PDF import: a PDF sent to `POST /api/lessons/import` becomes a lesson of one picture
//! slide per page, each page drawn as a 3840×2160 (4K) PNG of the teacher's media with its text
//! in the notes; damaged, password-protected, too long and too large PDFs, and PDFs over the
//! teacher's quota, are refused with a clear error and leave nothing behind. Sent to
//! `POST /api/slides/import` (the editor's "Import slides"), the same pages come back as
//! slides to insert, their pictures stored and no lesson made.

use image::RgbImage;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{expect_error, spawn_app, spawn_with, Teacher, TestApp};
use crate::media::{chunk_rows, file, leftovers, upload, PNG};
use crate::pdf::PdfSpec;

async fn import_pdf(app: &TestApp, t: &Teacher, pdf: Vec<u8>) -> reqwest::Response {
    send_pdf(app, t, "/api/lessons/import", pdf).await
}

async fn send_pdf(app: &TestApp, t: &Teacher, path: &str, pdf: Vec<u8>) -> reqwest::Response {
    pdf_request(app, t, path, pdf).send().await.unwrap()
}

fn pdf_request(app: &TestApp, t: &Teacher, path: &str, pdf: Vec<u8>) -> reqwest::RequestBuilder {
    app.as_teacher(Method::POST, path, t)
        .header("content-type", "application/pdf")
        .body(pdf)
}

/// The picture a slide shows, fetched as a board would, decoded.
pub async fn picture(app: &TestApp, slide: &Value) -> RgbImage {
    let res = app
        .request(
            Method::GET,
            &format!("/api/media/{}", slide["media"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/png");
    let bytes = res.bytes().await.unwrap();
    image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .unwrap()
        .to_rgb8()
}

fn dark_pixels(picture: &RgbImage) -> usize {
    picture
        .pixels()
        .filter(|p| p.0.iter().all(|&c| c < 100))
        .count()
}

fn three_pages() -> PdfSpec {
    let mut spec = PdfSpec::text_pages(3, |n| match n {
        1 => "Photosynthesis (light)".into(),
        2 => "Chlorophyll absorbs red and blue".into(),
        _ => "A leaf, seen closely".into(),
    });
    // A title from elsewhere: a line break and a control character become spaces.
    spec.title = Some("Biology —\n week\u{7} 2 ½".into());
    spec.pictures = vec![3];
    spec
}

#[tokio::test]
async fn a_pdf_becomes_one_picture_slide_per_page_with_its_text_in_the_notes() {
    let app = spawn_app().await;
    let t = app.register("pdf@school.org").await;
    let res = import_pdf(&app, &t, three_pages().build()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(res.headers().contains_key("etag"));
    let lesson: Value = res.json().await.unwrap();
    assert_eq!(lesson["title"], "Biology — week 2 ½");
    let slides = lesson["slides"].as_array().unwrap();
    assert_eq!(slides.len(), 3);
    let expected = [
        "Page 1\nPhotosynthesis (light)",
        "Page 2\nChlorophyll absorbs red and blue",
        "Page 3\nA leaf, seen closely",
    ];
    for (slide, text) in slides.iter().zip(expected) {
        assert_eq!(slide["kind"], "image");
        assert_eq!(slide["notes"], text);
        assert_eq!(slide["title"], text.lines().next().unwrap());
        let picture = picture(&app, slide).await;
        assert_eq!(picture.dimensions(), (3840, 2160));
        // The text is drawn: dark pixels on white, in the top left where it stands.
        assert!(dark_pixels(&picture) > 1_000, "{text}");
        assert_eq!(picture.get_pixel(3800, 2120).0, [255, 255, 255]);
    }
    // The picture on page 3: red at the middle of its top left quarter, blue below.
    let page3 = picture(&app, &slides[2]).await;
    let [r, g, b] = page3.get_pixel(1800, 1160).0;
    assert!(r > 200 && g < 60 && b < 60, "red, not {:?}", [r, g, b]);
    let [r, g, b] = page3.get_pixel(1800, 1560).0;
    assert!(b > 200 && r < 60 && g < 60, "blue, not {:?}", [r, g, b]);
    // The lesson is found by the text of its pages.
    let found = app
        .get_json("/api/lessons?q=chlorophyll", &t)
        .await
        .to_string();
    assert!(found.contains(lesson["id"].as_str().unwrap()), "{found}");

    // The same PDF again: a distinct title, and its pages cost nothing new (same pictures).
    let chunks = chunk_rows(&app).await;
    let again: Value = import_pdf(&app, &t, three_pages().build())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["title"], "Biology — week 2 ½ (copy)");
    assert_eq!(chunk_rows(&app).await, chunks);
    assert_eq!(leftovers(&app), 0);

    // Without a title, it is named for what it is.
    let untitled: Value = import_pdf(&app, &t, PdfSpec::text_pages(1, |_| "x".into()).build())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(untitled["title"], "Imported slides");

    // A colleague sees none of it: a lesson like any other.
    let stranger = app.register("stranger@school.org").await;
    let res = app
        .as_teacher(
            Method::GET,
            &format!("/api/lessons/{}", lesson["id"].as_str().unwrap()),
            &stranger,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.lesson_count(&stranger).await, 0);
}

#[tokio::test]
async fn the_editors_import_answers_slides_and_stores_their_pictures_but_no_lesson() {
    let app = spawn_app().await;
    let t = app.register("slides@school.org").await;
    let res = send_pdf(&app, &t, "/api/slides/import", three_pages().build()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    let slides = body["slides"].as_array().unwrap();
    assert_eq!(slides.len(), 3);
    assert_eq!(slides[1]["kind"], "image");
    assert_eq!(slides[1]["title"], "Page 2");
    assert_eq!(
        slides[1]["notes"],
        "Page 2\nChlorophyll absorbs red and blue"
    );
    assert_eq!(slides[1]["alt"], "Page 2 Chlorophyll absorbs red and blue");
    assert_eq!(slides[1]["layout"], "picture-full");
    assert_eq!(picture(&app, &slides[1]).await.dimensions(), (3840, 2160));
    assert_eq!(app.lesson_count(&t).await, 0);
    assert_eq!(leftovers(&app), 0);

    // The teacher saves them into a lesson as they come, between slides of their own.
    let mut all = vec![json!({"kind": "text", "title": "Before"})];
    all.extend(slides.iter().cloned());
    all.push(json!({"kind": "question", "title": "Why green?", "answer": "It reflects green"}));
    let lesson = app
        .create_lesson(&t, json!({"title": "Leaves", "slides": all}))
        .await;
    assert_eq!(lesson["slides"][2]["media"], slides[1]["media"]);
    assert_eq!(lesson["slides"].as_array().unwrap().len(), 5);

    // Refused, it stores nothing either.
    let chunks = chunk_rows(&app).await;
    let mut locked = three_pages();
    locked.password_protected = true;
    expect_error(
        send_pdf(&app, &t, "/api/slides/import", locked.build()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "pdf_password_protected",
    )
    .await;
    assert_eq!(chunk_rows(&app).await, chunks);
    assert_eq!(leftovers(&app), 0);
}

#[tokio::test]
async fn a_page_is_drawn_to_fit_the_board_to_the_pixel() {
    let app = spawn_app().await;
    let t = app.register("a4@school.org").await;
    // A4 upright fits the board's height; LibreOffice's and PowerPoint's 16:9 page of
    // 28 × 15.75 cm (793.7 × 446.46 points) fills the board, not a pixel short.
    for (size, drawn) in [
        ((595.0, 842.0), (1526, 2160)),
        ((793.7, 446.46), (3840, 2160)),
    ] {
        let mut spec = PdfSpec::text_pages(1, |_| "A page".into());
        spec.size = size;
        let lesson: Value = import_pdf(&app, &t, spec.build())
            .await
            .json()
            .await
            .unwrap();
        let picture = picture(&app, &lesson["slides"][0]).await;
        assert_eq!(picture.dimensions(), drawn, "a page of {size:?} points");
    }
}

#[tokio::test]
async fn refused_pdfs_say_why_and_leave_nothing_behind() {
    let app = spawn_app().await;
    let t = app.register("refused@school.org").await;
    let good = three_pages().build();

    let mut damaged = good.clone();
    damaged.truncate(good.len() / 3);
    damaged.extend_from_slice(b"garbage that is not a PDF");
    for unreadable in [b"Just some text, not a PDF at all".to_vec(), damaged] {
        let error = expect_error(
            import_pdf(&app, &t, unreadable).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_a_pdf",
        )
        .await;
        assert!(error["message"]
            .as_str()
            .unwrap()
            .contains("cannot be read as a PDF"));
    }

    let mut locked = three_pages();
    locked.password_protected = true;
    let error = expect_error(
        import_pdf(&app, &t, locked.build()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "pdf_password_protected",
    )
    .await;
    assert_eq!(
        error["message"],
        "This PDF is password-protected; save it without a password and try again."
    );

    let error = expect_error(
        import_pdf(
            &app,
            &t,
            PdfSpec::text_pages(101, |n| n.to_string()).build(),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "pdf_too_many_pages",
    )
    .await;
    assert!(error["message"].as_str().unwrap().contains("101 pages"));

    let mut huge = PdfSpec::text_pages(2, |_| "Poster".into());
    huge.size = (20_000.0, 540.0);
    let error = expect_error(
        import_pdf(&app, &t, huge.build()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "pdf_page_size",
    )
    .await;
    assert!(error["message"].as_str().unwrap().contains("Page 1"));
    // Within the sizes, but a strip that would be drawn less than a pixel across.
    let mut strip = PdfSpec::text_pages(1, |_| "Strip".into());
    strip.size = (5.0, 10_000.0);
    expect_error(
        import_pdf(&app, &t, strip.build()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "pdf_page_size",
    )
    .await;

    // A picture that says it has 20,000 × 9,000 pixels is not decoded to find out.
    let mut bomb = three_pages();
    bomb.picture_says = (20_000, 9_000);
    let error = expect_error(
        import_pdf(&app, &t, bomb.build()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "pdf_picture_too_large",
    )
    .await;
    assert!(error["message"].as_str().unwrap().contains("20000 × 9000"));
    // Nor one that says 2 × 2 under one name and 20,000 × 9,000 under the other.
    let mut bomb = three_pages();
    bomb.picture_short_says = Some((20_000, 9_000));
    expect_error(
        import_pdf(&app, &t, bomb.build()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "pdf_picture_too_large",
    )
    .await;

    // A page's drawing of 200 KB that unpacks to 200 MB is refused before it is unpacked.
    let mut bomb = three_pages();
    bomb.unpacks_to = Some(200_000_000);
    let pdf = bomb.build();
    assert!(pdf.len() < 1_000_000, "{} bytes", pdf.len());
    let error = expect_error(
        import_pdf(&app, &t, pdf).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "pdf_stream_too_large",
    )
    .await;
    assert!(error["message"].as_str().unwrap().contains("64 MiB"));

    // So is a picture written inside a page's drawing whose own filter unpacks 10 × 10
    // pixels to 200 MB.
    let mut bomb = three_pages();
    bomb.inline_unpacks_to = Some(200_000_000);
    let pdf = bomb.build();
    assert!(pdf.len() < 1_000_000, "{} bytes", pdf.len());
    expect_error(
        import_pdf(&app, &t, pdf).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "pdf_stream_too_large",
    )
    .await;

    assert_eq!(app.lesson_count(&t).await, 0);
    assert_eq!(chunk_rows(&app).await, 0);
    assert_eq!(leftovers(&app), 0);
}

#[tokio::test]
async fn a_compressed_page_within_the_bound_is_drawn() {
    let app = spawn_app().await;
    let t = app.register("packed@school.org").await;
    let mut packed = three_pages();
    packed.unpacks_to = Some(1_000_000);
    // A picture inside the page's drawing, unpacking to what its pixels need, is drawn too.
    packed.inline_unpacks_to = Some(100);
    let lesson: Value = import_pdf(&app, &t, packed.build())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        lesson["slides"][0]["notes"],
        "Page 1\nPhotosynthesis (light)"
    );
    let drawn = picture(&app, &lesson["slides"][0]).await;
    assert!(dark_pixels(&drawn) > 1_000);
    // The inline picture, at 700..800 × 300..400 points of a 960 × 540 page: grey 32.
    assert_eq!(drawn.get_pixel(3000, 760).0, [32, 32, 32]);
}

#[tokio::test]
async fn a_pdf_over_the_media_quota_is_refused_whole() {
    let app = spawn_with(|c| {
        c.media_max_mib = Some(1);
        c.media_storage_mib = Some(1);
    })
    .await;
    let t = app.register("full@school.org").await;
    // Nearly full: a page or two fit, forty do not.
    let res = upload(&app, &t, file(PNG, 900_000), "image/png").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let chunks = chunk_rows(&app).await;
    let pdf = PdfSpec::text_pages(40, |n| format!("Slide number {n} of forty")).build();
    expect_error(
        import_pdf(&app, &t, pdf.clone()).await,
        StatusCode::FORBIDDEN,
        "storage_full",
    )
    .await;
    assert_eq!(app.lesson_count(&t).await, 0);
    assert_eq!(chunk_rows(&app).await, chunks);
    assert_eq!(leftovers(&app), 0);

    // Followed page by page, the refusal comes while drawing: the stream's last line.
    let lines = lines_of(follow_pdf(&app, &t, "/api/lessons/import", pdf).await).await;
    let last = lines.last().unwrap();
    assert_eq!(last["error"]["code"], "storage_full", "{last}");
    assert!(lines.len() > 1 && lines[0] == json!({"page": 1, "pages": 40}));
    assert_eq!(app.lesson_count(&t).await, 0);
    assert_eq!(chunk_rows(&app).await, chunks);
    assert_eq!(leftovers(&app), 0);
}

/// Sends a PDF asking to follow it page by page.
async fn follow_pdf(app: &TestApp, t: &Teacher, path: &str, pdf: Vec<u8>) -> reqwest::Response {
    pdf_request(app, t, path, pdf)
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .unwrap()
}

/// The lines of a followed import, each parsed.
async fn lines_of(res: reqwest::Response) -> Vec<Value> {
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    let text = res.text().await.unwrap();
    assert!(text.ends_with('\n'), "{text}");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn an_import_followed_page_by_page_tells_each_page_then_the_result() {
    let app = spawn_app().await;
    let t = app.register("follow@school.org").await;
    let lines =
        lines_of(follow_pdf(&app, &t, "/api/lessons/import", three_pages().build()).await).await;
    assert_eq!(
        lines[..3],
        [
            json!({"page": 1, "pages": 3}),
            json!({"page": 2, "pages": 3}),
            json!({"page": 3, "pages": 3})
        ]
    );
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[3]["lesson"]["title"], "Biology — week 2 ½");
    assert_eq!(lines[3]["lesson"]["slides"].as_array().unwrap().len(), 3);
    assert_eq!(app.lesson_count(&t).await, 1);

    // The editor's import the same way, ending in its slides.
    let lines =
        lines_of(follow_pdf(&app, &t, "/api/slides/import", three_pages().build()).await).await;
    assert_eq!(lines[2], json!({"page": 3, "pages": 3}));
    assert_eq!(lines[3]["slides"][0]["title"], "Page 1");

    // A refusal known before drawing starts answers its status, not a stream.
    let mut locked = three_pages();
    locked.password_protected = true;
    expect_error(
        follow_pdf(&app, &t, "/api/lessons/import", locked.build()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "pdf_password_protected",
    )
    .await;
    // Nor is a body that is not a PDF at all.
    let res = follow_pdf(&app, &t, "/api/slides/import", b"not a PDF".to_vec()).await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "not_a_pdf").await;
    assert_eq!(app.lesson_count(&t).await, 1);
}

#[tokio::test]
async fn a_client_that_goes_away_mid_import_stops_it_and_leaves_nothing() {
    let app = spawn_app().await;
    let t = app.register("gone@school.org").await;
    let pdf = PdfSpec::text_pages(60, |n| format!("Never finished {n}")).build();
    let mut res = follow_pdf(&app, &t, "/api/lessons/import", pdf).await;
    assert_eq!(res.status(), StatusCode::OK);
    let first = res.chunk().await.unwrap().unwrap();
    assert!(first.starts_with(b"{\"page\":1,"), "{first:?}");
    drop(res);

    // One PDF is drawn at a time: once the next import is done, the first has ended.
    let res = import_pdf(&app, &t, three_pages().build()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let done = chunk_rows(&app).await;
    assert_eq!(app.lesson_count(&t).await, 1);
    assert_eq!(leftovers(&app), 0);
    // What is stored is the second import's alone.
    let fresh = spawn_app().await;
    let u = fresh.register("gone@school.org").await;
    import_pdf(&fresh, &u, three_pages().build()).await;
    assert_eq!(done, chunk_rows(&fresh).await);
}
