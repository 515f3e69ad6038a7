//! The PDF import's time (a benchmark, not a test; `bench/pdf_import` runs it): a generated
//! PDF of `--pages` slides (16:9, a heading and four lines of Helvetica each, a picture on
//! every fourth) imported `--runs` times through `pdf_import::import`, as the HTTP handler
//! calls it (no HTTP: the upload itself is the media upload's, measured elsewhere), into a
//! SQLite store: every page drawn at 3840×2160, its text read, its PNG stored as new media
//! (each run's PDF differs, so nothing is shared), the lesson created.
//!
//! Usage: pdf_import_bench [--pages N] [--runs N]

#[path = "support/import_bench.rs"]
mod import_bench;
#[path = "../tests/support/pdf.rs"]
mod pdf;
#[path = "support/seed.rs"]
mod seed;
#[path = "support/stats.rs"]
mod stats;

use std::time::Instant;

fn main() {
    import_bench::main("pages", 40, measure);
}

async fn measure(pages: usize, runs: usize, bench: import_bench::Bench) {
    let (dir, store, limits) = (&bench.dir, &bench.store, bench.limits);
    let mut totals = Vec::new();
    for run in 0..runs {
        let mut spec =
            pdf::PdfSpec::text_pages(pages, |n| format!("Run {run}: the water cycle, part {n}"));
        for lines in &mut spec.pages {
            lines.extend(
                [
                    "Evaporation: the sun warms the sea",
                    "Condensation: clouds form as air cools",
                    "Precipitation: rain, snow and hail",
                ]
                .map(String::from),
            );
        }
        spec.pictures = (1..=pages).filter(|n| n % 4 == 0).collect();
        spec.title = Some(format!("Water cycle {run}"));
        let bytes = spec.build();
        let file = dir.path().join(format!("{run}.pdf"));
        std::fs::write(&file, &bytes).unwrap();
        let (owner, _) = seed::teacher(store.as_ref(), run, "x").await;

        let started = Instant::now();
        let lesson = classcast::pdf_import::import(
            store.as_ref(),
            &bench.quota,
            &bench.room,
            classcast::pdf_import::Job {
                owner,
                source: std::fs::File::open(&file).unwrap().into(),
                limits,
                dir: &dir.path().join("uploads"),
                progress: None,
            },
        )
        .await
        .unwrap();
        let took = started.elapsed();
        assert_eq!(lesson.content.slides.len(), pages);
        let stored = store.media_bytes(owner).await.unwrap();
        println!(
            "run {run}: {pages} pages ({} KiB of PDF) in {:.2} s, {:.0} ms a page; {:.1} MiB of PNG stored ({:.0} KiB a page)",
            bytes.len() >> 10,
            took.as_secs_f64(),
            took.as_secs_f64() * 1000.0 / pages as f64,
            stored as f64 / f64::from(1 << 20),
            stored as f64 / 1024.0 / pages as f64,
        );
        totals.push(took.as_secs_f64() * 1000.0);
    }
    stats::report(&format!("import of {pages} pages"), totals);
}
