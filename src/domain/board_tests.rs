//! Tests of the board's rules: commands, timers, names, codes and fingerprints.
use super::*;

#[test]
fn a_fingerprint_is_four_unambiguous_characters_fixed_per_board() {
    let board = Uuid::now_v7();
    let print = fingerprint(board);
    assert_eq!(print.len(), 4);
    assert!(print.chars().all(|c| !"01IO".contains(c)), "{print}");
    assert_eq!(fingerprint(board), print);
    let others: std::collections::HashSet<_> =
        (0..200).map(|_| fingerprint(Uuid::now_v7())).collect();
    assert!(
        others.len() > 190,
        "fingerprints of different boards differ"
    );
}
use crate::domain::lesson::SlideInput;
use serde_json::json;

fn lesson() -> LessonContent {
    let s = |kind: &str| SlideInput {
        kind: kind.into(),
        body: Some("**hi**".into()),
        answer: Some("42".into()),
        seconds: Some(30.0),
        notes: Some("secret notes".into()),
        ..Default::default()
    };
    LessonContent::parse("L", vec![s("text"), s("question"), s("timer")]).unwrap()
}

fn at(content: &LessonContent) -> LessonAt<'_> {
    LessonAt {
        id: Uuid::nil(),
        revision: Uuid::nil(),
        content,
    }
}

fn run(state: &BoardState, op: Op, content: &LessonContent, now: i64) -> BoardState {
    apply(state, &op, Some(at(content)), "Ms J", now).unwrap()
}

/// An idle board that has just been told to present `content` at `slide`.
fn presenting(content: &LessonContent, slide: u32) -> BoardState {
    let present = Op::Present {
        lesson: Uuid::nil(),
        slide,
        show_name: true,
    };
    run(&BoardState::idle(Uuid::nil()), present, content, 0)
}

#[test]
fn presenting_shows_the_first_slide_rendered_without_notes() {
    let content = lesson();
    let s = presenting(&content, 0);
    let slide = s.slide.as_ref().unwrap();
    assert_eq!(slide.html, "<p><strong>hi</strong></p>\n");
    assert!(!serde_json::to_string(&s).unwrap().contains("secret notes"));
    assert_eq!(s.presenter.unwrap().name, "Ms J");
}

#[test]
fn a_board_learns_the_media_of_the_next_two_slides_to_fetch_ahead() {
    let picture = |n: usize| SlideInput {
        kind: "image".into(),
        media: Some(format!("{n:064x}")),
        ..Default::default()
    };
    let text = SlideInput {
        kind: "text".into(),
        ..Default::default()
    };
    let slides = vec![text.clone(), picture(1), text, picture(3), picture(4)];
    let content = LessonContent::parse("L", slides).unwrap();
    let mut s = presenting(&content, 0);
    assert_eq!(s.upcoming_media, [format!("{:064x}", 1)]);
    s = run(&s, Op::Next, &content, 0);
    assert_eq!(s.upcoming_media, [format!("{:064x}", 3)]);
    s = run(&s, Op::Goto { slide: 2 }, &content, 0);
    assert_eq!(
        s.upcoming_media,
        [format!("{:064x}", 3), format!("{:064x}", 4)]
    );
    let mut restored: BoardState = serde_json::from_str(&s.stored_json()).unwrap();
    assert!(restored.upcoming_media.is_empty(), "derived, never stored");
    restored.restore_slide(&content);
    assert_eq!(restored.upcoming_media, s.upcoming_media);
    s = run(&s, Op::Goto { slide: 4 }, &content, 0);
    assert!(s.upcoming_media.is_empty());
}

#[test]
fn next_and_prev_stop_at_the_ends_and_goto_checks_its_range() {
    let content = lesson();
    let mut s = presenting(&content, 0);
    s = run(&s, Op::Prev, &content, 0);
    assert_eq!(s.slide_index, 0);
    for _ in 0..5 {
        s = run(&s, Op::Next, &content, 0);
    }
    assert_eq!(s.slide_index, 2);
    let err = apply(&s, &Op::Goto { slide: 3 }, Some(at(&content)), "x", 0).unwrap_err();
    assert!(matches!(err, CommandError::InvalidArgs(_)));
}

#[test]
fn the_answer_reaches_the_board_only_when_revealed() {
    let content = lesson();
    let s = presenting(&content, 1);
    assert_eq!(s.slide.as_ref().unwrap().answer, None);
    let s = run(&s, Op::Reveal { on: true }, &content, 0);
    assert_eq!(s.slide.as_ref().unwrap().answer.as_deref(), Some("42"));
    let s = run(&s, Op::Next, &content, 0);
    assert!(!s.revealed);
}

#[test]
fn a_teacher_may_keep_their_name_off_the_board() {
    let content = lesson();
    let hidden = Op::Present {
        lesson: Uuid::nil(),
        slide: 0,
        show_name: false,
    };
    let s = run(&BoardState::idle(Uuid::nil()), hidden, &content, 0);
    assert_eq!(s.presenter, None);
    let s = run(&s, Op::Next, &content, 0);
    assert_eq!(s.presenter, None, "for the rest of the lesson");
    assert!(!serde_json::to_string(&s).unwrap().contains("Ms J"));
    let stored: BoardState = serde_json::from_str(&s.stored_json()).unwrap();
    assert!(stored.name_hidden);
    let ended = run(&s, Op::End, &content, 0);
    assert!(ended.name_hidden, "kept off the idle screen too");
    let s = run(&s, Op::ShowName { on: true }, &content, 0);
    assert_eq!(s.presenter.unwrap().name, "Ms J");
    let args = serde_json::json!({"lesson": Uuid::nil(), "show_name": "no"});
    assert!(Op::parse("present", args.as_object().unwrap()).is_err());
}

#[test]
fn a_running_timer_keeps_counting_while_another_slide_shows() {
    let content = lesson(); // slide 2 is a 30 s timer
    let s = presenting(&content, 2);
    let s = run(&s, Op::TimerStart, &content, 1_000);
    let s = run(&s, Op::Prev, &content, 5_000);
    assert_eq!(s.timers.len(), 1, "kept while slide 1 shows");
    assert_eq!(s.timers[0].index, 2);
    assert_eq!(s.timers[0].timer.ends_at, Some(31_000));
    // Stored and read back with the state.
    let mut stored: BoardState = serde_json::from_str(&s.stored_json()).unwrap();
    stored.restore_slide(&content);
    assert_eq!(stored.timers, s.timers);
    let s = run(&s, Op::Next, &content, 20_000);
    assert!(s.timers.is_empty());
    assert_eq!(
        (s.timer.running, s.timer.ends_at),
        (true, Some(31_000)),
        "still counting, not reset"
    );
    // Paused part-way, it is found paused where it was.
    let s = run(&s, Op::TimerPause, &content, 21_000);
    let s = run(&s, Op::Goto { slide: 0 }, &content, 22_000);
    let s = run(&s, Op::Goto { slide: 2 }, &content, 99_000);
    assert_eq!((s.timer.running, s.timer.remaining_ms), (false, 10_000));
}

/// A teacher starting the timer of every slide of a long lesson: the state stays a size
/// a node can carry to the others, however long the titles.
#[test]
fn timers_kept_are_bounded_and_their_titles_are_the_slides() {
    let title = "\"é".repeat(100);
    let slides = (0..40)
        .map(|_| SlideInput {
            kind: "timer".into(),
            title: Some(title.clone()),
            seconds: Some(600.0),
            ..Default::default()
        })
        .collect();
    let content = LessonContent::parse("Timers", slides).unwrap();
    let mut s = presenting(&content, 0);
    for slide in 0..40 {
        s = run(&s, Op::Goto { slide }, &content, i64::from(slide));
        s = run(&s, Op::TimerStart, &content, i64::from(slide));
    }
    assert_eq!(s.timers.len(), TIMERS_KEPT);
    assert_eq!(
        s.timers[0].index,
        39 - u32::try_from(TIMERS_KEPT).unwrap(),
        "the most recently left"
    );
    let stored = s.stored_json();
    assert!(stored.len() <= 2_000, "{} bytes", stored.len());
    assert!(!stored.contains("é"), "titles are not stored");
    let mut restored: BoardState = serde_json::from_str(&stored).unwrap();
    restored.restore_slide(&content);
    assert_eq!(restored.timers, s.timers);
    assert!(restored.timers.iter().all(|t| t.title == title));
}

#[test]
fn timers_never_started_or_run_out_are_not_kept_and_a_new_presentation_starts_afresh() {
    let content = lesson();
    let s = presenting(&content, 2);
    let s = run(&s, Op::Prev, &content, 1_000);
    assert!(s.timers.is_empty(), "never started");
    let s = run(&s, Op::Next, &content, 1_000);
    let s = run(&s, Op::TimerStart, &content, 1_000);
    let s = run(&s, Op::Prev, &content, 2_000);
    assert_eq!(s.timers.len(), 1);
    let s = run(&s, Op::Prev, &content, 40_000);
    assert!(s.timers.is_empty(), "it ran out meanwhile");
    let s = run(&s, Op::Goto { slide: 2 }, &content, 41_000);
    assert_eq!(
        (s.timer.running, s.timer.remaining_ms),
        (false, 30_000),
        "ready again"
    );

    let s = run(&s, Op::TimerStart, &content, 41_000);
    let s = run(&s, Op::Prev, &content, 42_000);
    let again = Op::Present {
        lesson: Uuid::nil(),
        slide: 2,
        show_name: true,
    };
    let s = run(&s, again, &content, 43_000);
    assert!(s.timers.is_empty());
    assert_eq!((s.timer.running, s.timer.remaining_ms), (false, 30_000));
}

#[test]
fn a_minute_more_extends_a_running_paused_or_finished_timer() {
    let content = lesson();
    let minute = Op::TimerAdd { ms: 60_000 };
    let s = presenting(&content, 2);
    let s = run(&s, Op::TimerStart, &content, 0);
    let s = run(&s, minute.clone(), &content, 10_000);
    assert_eq!(s.timer.ends_at, Some(90_000), "20 s left and a minute more");
    let s = run(&s, Op::TimerPause, &content, 30_000);
    let s = run(&s, minute.clone(), &content, 31_000);
    assert_eq!(s.timer.remaining_ms, 120_000);
    let s = run(&s, Op::TimerStart, &content, 40_000);
    let s = run(&s, minute, &content, 500_000);
    assert_eq!(s.timer.ends_at, Some(560_000), "run out: a minute from now");
    let args = serde_json::json!({"ms": 0});
    assert!(Op::parse("timer_add", args.as_object().unwrap()).is_err());
}

#[test]
fn a_minute_more_keeps_a_ready_timer_ready_and_a_paused_one_paused_across_slides() {
    let content = lesson(); // slide 2 is a 30 s timer
    let minute = Op::TimerAdd { ms: 60_000 };
    let s = presenting(&content, 2);
    let s = run(&s, minute.clone(), &content, 0);
    let t = &s.timer;
    assert_eq!(
        (t.running, t.remaining_ms, t.duration_ms),
        (false, 90_000, 90_000),
        "ready"
    );
    let s = run(&s, Op::TimerStart, &content, 0);
    let s = run(&s, Op::TimerPause, &content, 5_000);
    let s = run(&s, minute, &content, 6_000);
    assert_eq!(
        (s.timer.remaining_ms, s.timer.duration_ms),
        (145_000, 150_000)
    );
    // Left and shown again, it is found paused where it was, not fresh.
    let s = run(&s, Op::Goto { slide: 0 }, &content, 7_000);
    assert_eq!(s.timers.len(), 1);
    let s = run(&s, Op::Goto { slide: 2 }, &content, 99_000);
    let t = &s.timer;
    assert_eq!(
        (t.running, t.remaining_ms, t.duration_ms),
        (false, 145_000, 150_000)
    );
}

#[test]
fn a_timer_run_out_on_another_slide_leaves_at_the_next_command() {
    let content = lesson();
    let s = presenting(&content, 2);
    let s = run(&s, Op::TimerStart, &content, 0);
    let s = run(&s, Op::Goto { slide: 0 }, &content, 1_000);
    assert_eq!(s.timers.len(), 1);
    // Run out at 30 s; any command after that no longer carries it.
    let s = run(&s, Op::Blank { on: true }, &content, 31_000);
    assert!(s.timers.is_empty());
}

#[test]
fn a_timer_counts_on_the_server_clock_through_pause_and_reset() {
    let content = lesson();
    let s = presenting(&content, 2);
    assert_eq!(s.timer.remaining_ms, 30_000);
    let s = run(&s, Op::TimerStart, &content, 1_000);
    assert_eq!(s.timer.ends_at, Some(31_000));
    let s = run(&s, Op::TimerPause, &content, 11_000);
    assert_eq!((s.timer.running, s.timer.remaining_ms), (false, 20_000));
    let s = run(&s, Op::TimerStart, &content, 50_000);
    assert_eq!(s.timer.ends_at, Some(70_000));
    let s = run(&s, Op::TimerReset, &content, 51_000);
    assert_eq!((s.timer.running, s.timer.remaining_ms), (false, 30_000));
}

#[test]
fn commands_that_do_not_fit_the_slide_are_refused() {
    let content = lesson();
    let s = presenting(&content, 0);
    assert_eq!(
        apply(&s, &Op::TimerStart, Some(at(&content)), "x", 0),
        Err(CommandError::WrongSlideKind("timer"))
    );
    let idle = BoardState::idle(Uuid::nil());
    assert_eq!(
        apply(&idle, &Op::Next, None, "x", 0),
        Err(CommandError::NotPresenting)
    );
    let empty = LessonContent::parse("E", vec![]).unwrap();
    assert_eq!(
        apply(
            &idle,
            &Op::Present {
                lesson: Uuid::nil(),
                slide: 0,
                show_name: true,
            },
            Some(at(&empty)),
            "x",
            0
        ),
        Err(CommandError::EmptyLesson)
    );
}

#[test]
fn ops_are_parsed_with_clear_errors() {
    assert_eq!(
        Op::parse("goto", json!({"slide": 3}).as_object().unwrap()),
        Ok(Op::Goto { slide: 3 })
    );
    assert!(matches!(
        Op::parse("goto", json!({}).as_object().unwrap()),
        Err(CommandError::InvalidArgs(_))
    ));
    assert!(matches!(
        Op::parse("fly", json!({}).as_object().unwrap()),
        Err(CommandError::UnknownOp(_))
    ));
}

#[test]
fn codes_are_six_digits_typed_loosely() {
    assert_eq!(PairingCode::parse("483 920").unwrap(), "483920");
    assert_eq!(PairingCode::parse("483-920").unwrap(), "483920");
    assert!(PairingCode::parse("48392").is_err() && PairingCode::parse("48392a").is_err());
    assert_eq!(PairingCode::generate().len(), 6);
}

#[test]
fn the_slide_view_carries_its_layout_its_alt_text_and_the_lessons_theme_never_stored() {
    use crate::domain::design::{SlideLayout, Theme, ThemeName};
    let mut content = LessonContent::parse(
        "L",
        vec![SlideInput {
            kind: "image".into(),
            media: Some(format!("{:064x}", 1)),
            layout: Some("picture-text".into()),
            alt: Some("A pie".into()),
            ..Default::default()
        }],
    )
    .unwrap();
    content.theme = Some(Theme {
        name: ThemeName::Contrast,
        accent: None,
    });
    let s = presenting(&content, 0);
    let view = s.slide.as_ref().unwrap();
    assert_eq!(view.layout, Some(SlideLayout::PictureText));
    assert_eq!(view.alt.as_deref(), Some("A pie"));
    assert_eq!(view.theme, content.theme);
    let stored = s.stored_json();
    assert!(
        !stored.contains("contrast") && !stored.contains("A pie"),
        "{stored}"
    );
    let mut restored: BoardState = serde_json::from_str(&stored).unwrap();
    restored.restore_slide(&content);
    assert_eq!(restored.slide, s.slide);
    // A slide saved before layouts, of a lesson before themes: the view says nothing new.
    let plain = presenting(&lesson(), 0);
    let json = serde_json::to_value(plain.slide.unwrap()).unwrap();
    for field in ["layout", "alt", "theme"] {
        assert_eq!(json.get(field), None, "{field}");
    }
}
