//! The office import's time (a benchmark, not a test; `bench/office_import` runs it): a
//! `.pptx` of `--slides` slides (16:9, a heading, three lines and speaker notes on each, the
//! notes pages numbered as PowerPoint's are), made by LibreOffice from flat OpenDocument,
//! imported `--runs` times as the HTTP handler does it (no HTTP): converted by
//! `office_import::Office::convert` (slides, then notes pages, in its sandbox), then
//! `pdf_import::import` into a SQLite store (every page drawn at 3840×2160, its PNG stored as
//! new media, the lesson created). Needs `soffice` and `prlimit` on `PATH`.
//!
//! Usage: office_import_bench [--slides N] [--runs N]

#[path = "../tests/support/deck.rs"]
mod deck;
#[path = "support/import_bench.rs"]
mod import_bench;
#[path = "support/seed.rs"]
mod seed;
#[path = "support/stats.rs"]
mod stats;

use std::time::Instant;

use classcast::office_import::{Deck, Office};

fn main() {
    import_bench::main("slides", 10, measure);
}

async fn measure(slides: usize, runs: usize, bench: import_bench::Bench) {
    let (dir, store, limits) = (&bench.dir, &bench.store, bench.limits);
    let uploads = dir.path().join("uploads");
    let office = Office::new(None, &uploads, std::time::Duration::from_secs(120));
    assert!(office.available(), "needs soffice and prlimit on PATH");
    let (mut totals, mut conversions) = (Vec::new(), Vec::new());
    for run in 0..runs {
        // Each run's slides differ, so no page is stored already.
        let texts: Vec<(String, String)> = (1..=slides)
            .map(|n| {
                (
                    format!("Run {run}: the water cycle, part {n}"),
                    format!("Ask the class where the water of part {n} goes"),
                )
            })
            .collect();
        let texts: Vec<(&str, &str)> = texts
            .iter()
            .map(|(t, n)| (t.as_str(), n.as_str()))
            .collect();
        let pptx =
            deck::with_slide_numbers(&deck::deck(&format!("Water cycle {run}"), &texts, "pptx"));
        let file = dir.path().join(format!("{run}.pptx"));
        std::fs::write(&file, &pptx).unwrap();
        let (owner, _) = seed::teacher(store.as_ref(), run, "x").await;

        let started = Instant::now();
        let input = std::fs::File::open(&file).unwrap();
        let (input, kind) = Deck::of(input).await.unwrap();
        let pdf = office
            .convert(kind.unwrap(), input, limits.max_bytes)
            .await
            .unwrap();
        let converted = started.elapsed();
        let lesson = classcast::pdf_import::import(
            store.as_ref(),
            &bench.quota,
            &bench.room,
            classcast::pdf_import::Job {
                owner,
                source: pdf,
                limits,
                dir: &uploads,
                progress: None,
            },
        )
        .await
        .unwrap();
        let took = started.elapsed();
        assert_eq!(lesson.content.slides.len(), slides);
        println!(
            "run {run}: {slides} slides ({} KiB of .pptx) in {:.2} s: converted (slides and notes pages) in {:.2} s, drawn and stored in {:.2} s",
            pptx.len() >> 10,
            took.as_secs_f64(),
            converted.as_secs_f64(),
            (took - converted).as_secs_f64(),
        );
        totals.push(took.as_secs_f64() * 1000.0);
        conversions.push(converted.as_secs_f64() * 1000.0);
    }
    stats::report(&format!("conversion of {slides} slides"), conversions);
    stats::report(&format!("import of {slides} slides"), totals);
}
