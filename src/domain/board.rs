//! What a board shows, and how teacher commands change it.
//!
//! A board's state is a small document sent whole to every client (state, not deltas).
//! [`apply`] is a pure function from (state, command, lesson, clock) to the next state; it is
//! where every rule of presenting lives. Storing, versioning and fan-out are elsewhere.

use rand::Rng;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::design::{SlideLayout, Theme};
use super::lesson::{LessonContent, Slide, SlideKind, TIMER_SECONDS_MAX};
use super::markdown::to_safe_html;
use super::MAX_SAFE_INTEGER;

/// The state of one board, as stored and as sent to clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoardState {
    pub board: Uuid,
    /// Set from the stored row; not part of the stored document.
    #[serde(default)]
    pub version: i64,
    pub lesson: Option<PresentedLesson>,
    pub slide_index: u32,
    /// Derived from the presented revision: never stored (see [`BoardState::stored_json`]).
    #[serde(default)]
    pub slide: Option<SlideView>,
    /// The media of the next two slides, for the board to fetch ahead: derived from the
    /// presented revision like `slide`, never stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upcoming_media: Vec<String>,
    pub blanked: bool,
    pub revealed: bool,
    pub timer: TimerState,
    /// Timers of other slides of the lesson that were started and have not run out: they
    /// keep counting while another slide shows, and the slide finds its timer as it was.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timers: Vec<SlideTimer>,
    pub video: VideoState,
    /// Who steers the board, shown in its corner; `None` while the teacher keeps their name
    /// off the board (`name_hidden`).
    pub presenter: Option<Presenter>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub name_hidden: bool,
}

/// The timer of a slide that is not showing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlideTimer {
    pub slide: Uuid,
    /// Its index and title, for the small countdown shown meanwhile. The title is the
    /// slide's, filled in from the presented revision like the slide view: never stored.
    pub index: u32,
    #[serde(default)]
    pub title: String,
    pub timer: TimerState,
}

/// Timers of other slides kept at once: the most recently left. A lesson rarely has more
/// than a few; without a bound, every stored state would carry every timer ever started.
pub const TIMERS_KEPT: usize = 8;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresentedLesson {
    pub id: Uuid,
    /// The revision being presented: edits made meanwhile show from the next `present`.
    pub revision: Uuid,
    pub title: String,
    pub slide_count: u32,
}

/// A slide as the board may see it: rendered, without speaker notes, the answer only once
/// revealed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlideView {
    pub id: Uuid,
    pub kind: SlideKind,
    pub title: String,
    pub html: String,
    pub media: Option<String>,
    pub seconds: Option<u32>,
    pub answer: Option<String>,
    /// Left out for the kind's usual look (and by nodes from before layouts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<SlideLayout>,
    /// The picture's alternative text (image slides), left out when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt: Option<String>,
    /// The presented lesson's theme, with every slide so that the board needs nothing more;
    /// left out for the default look.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<Theme>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimerState {
    pub duration_ms: u64,
    pub running: bool,
    /// Server clock; set while running.
    pub ends_at: Option<i64>,
    /// What is left while paused.
    pub remaining_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VideoState {
    pub playing: bool,
    pub position_ms: u64,
    /// Server clock when playback (re)started at `position_ms`.
    pub since: Option<i64>,
}

/// What a board page says with the version it shows: it holds the media of the next slides
/// (`ready`) and of the whole lesson (`cached`); it plays the slide's video without sound
/// (`muted`: its browser wants a touch first).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shown {
    pub ready: bool,
    pub cached: bool,
    pub muted: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Presenter {
    pub name: String,
}

impl BoardState {
    /// A board that shows nothing yet.
    pub fn idle(board: Uuid) -> Self {
        Self {
            board,
            version: 0,
            lesson: None,
            slide_index: 0,
            slide: None,
            upcoming_media: Vec::new(),
            blanked: false,
            revealed: false,
            timer: TimerState::default(),
            timers: Vec::new(),
            video: VideoState::default(),
            presenter: None,
            name_hidden: false,
        }
    }

    pub fn is_presenting(&self) -> bool {
        self.lesson.is_some()
    }

    /// The document the store keeps: everything but the slide view, which follows from the
    /// presented revision and the slide index. A slide's rendered HTML can be hundreds of
    /// kilobytes; without it a state is a few hundred bytes, whatever the lesson.
    pub fn stored_json(&self) -> String {
        #[derive(Serialize)]
        struct StoredTimer<'a> {
            slide: Uuid,
            index: u32,
            timer: &'a TimerState,
        }
        #[derive(Serialize)]
        struct Stored<'a> {
            board: Uuid,
            lesson: &'a Option<PresentedLesson>,
            slide_index: u32,
            blanked: bool,
            revealed: bool,
            timer: &'a TimerState,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            timers: Vec<StoredTimer<'a>>,
            video: &'a VideoState,
            presenter: &'a Option<Presenter>,
            #[serde(skip_serializing_if = "std::ops::Not::not")]
            name_hidden: bool,
        }
        serde_json::to_string(&Stored {
            board: self.board,
            lesson: &self.lesson,
            slide_index: self.slide_index,
            blanked: self.blanked,
            revealed: self.revealed,
            timer: &self.timer,
            timers: self
                .timers
                .iter()
                .map(|t| StoredTimer {
                    slide: t.slide,
                    index: t.index,
                    timer: &t.timer,
                })
                .collect(),
            video: &self.video,
            presenter: &self.presenter,
            name_hidden: self.name_hidden,
        })
        .expect("a board state is plain data")
    }

    /// Fills in the slide view of a stored state from the revision it presents.
    pub fn restore_slide(&mut self, content: &LessonContent) {
        self.slide = content
            .slides
            .get(self.slide_index as usize)
            .map(|slide| view(content, slide, self.revealed));
        self.upcoming_media = upcoming_media(content, self.slide_index);
        for kept in &mut self.timers {
            if let Some(slide) = content.slides.iter().find(|s| s.id == kept.slide) {
                kept.title = slide.title.clone();
            }
        }
    }
}

/// A teacher's command, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `show_name`: the teacher's name in the board's corner (default yes).
    Present {
        lesson: Uuid,
        slide: u32,
        show_name: bool,
    },
    /// Shows or hides the name of whoever steers the board, from now on.
    ShowName {
        on: bool,
    },
    Next,
    Prev,
    Goto {
        slide: u32,
    },
    Blank {
        on: bool,
    },
    Reveal {
        on: bool,
    },
    TimerStart,
    TimerPause,
    TimerReset,
    /// More time on the clock, running or not; a timer that ran out starts again with it.
    TimerAdd {
        ms: u64,
    },
    VideoPlay {
        position_ms: u64,
    },
    VideoPause {
        position_ms: u64,
    },
    End,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("unknown command {0:?}")]
    UnknownOp(String),
    #[error("{0}")]
    InvalidArgs(String),
    #[error("nothing is being presented on this board")]
    NotPresenting,
    #[error("this lesson has no slides yet")]
    EmptyLesson,
    #[error("the current slide is not a {0} slide")]
    WrongSlideKind(&'static str),
}

impl Op {
    pub fn parse(
        op: &str,
        args: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, CommandError> {
        let uint = |name: &str| -> Result<u64, CommandError> {
            args.get(name).and_then(whole_number).ok_or_else(|| {
                CommandError::InvalidArgs(format!(
                    "`{op}` needs `{name}`, a whole number from 0 to 2^53 - 1"
                ))
            })
        };
        let flag = |name: &str| -> Result<bool, CommandError> {
            args.get(name).and_then(|v| v.as_bool()).ok_or_else(|| {
                CommandError::InvalidArgs(format!("`{op}` needs `{name}`: true or false"))
            })
        };
        let index = |v: u64| {
            u32::try_from(v).map_err(|_| CommandError::InvalidArgs("slide index too large".into()))
        };
        Ok(match op {
            "present" => Op::Present {
                lesson: args
                    .get("lesson")
                    .and_then(|v| v.as_str())
                    .and_then(|s| Uuid::parse_str(s).ok())
                    .ok_or_else(|| {
                        CommandError::InvalidArgs("`present` needs `lesson`, a lesson id".into())
                    })?,
                slide: match args.get("slide") {
                    None | Some(serde_json::Value::Null) => 0,
                    Some(_) => index(uint("slide")?)?,
                },
                show_name: match args.get("show_name") {
                    None | Some(serde_json::Value::Null) => true,
                    Some(_) => flag("show_name")?,
                },
            },
            "show_name" => Op::ShowName { on: flag("on")? },
            "next" => Op::Next,
            "prev" => Op::Prev,
            "goto" => Op::Goto {
                slide: index(uint("slide")?)?,
            },
            "blank" => Op::Blank { on: flag("on")? },
            "reveal" => Op::Reveal { on: flag("on")? },
            "timer_start" => Op::TimerStart,
            "timer_pause" => Op::TimerPause,
            "timer_reset" => Op::TimerReset,
            "timer_add" => match uint("ms")? {
                ms @ 1..=TIMER_ADD_MAX_MS => Op::TimerAdd { ms },
                _ => {
                    return Err(CommandError::InvalidArgs(format!(
                        "`timer_add` adds 1 to {TIMER_ADD_MAX_MS} ms"
                    )))
                }
            },
            "video_play" => Op::VideoPlay {
                position_ms: uint("position_ms")?,
            },
            "video_pause" => Op::VideoPause {
                position_ms: uint("position_ms")?,
            },
            "end" => Op::End,
            other => return Err(CommandError::UnknownOp(other.chars().take(40).collect())),
        })
    }
}

/// Milliseconds of a timer (at most [`TIMER_SECONDS_MAX`] seconds) as a time offset.
fn whole_ms(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// A whole number a JSON client can hold exactly (written `5` or `5.0`), or `None`.
fn whole_number(value: &serde_json::Value) -> Option<u64> {
    let n = value.as_f64()?;
    // Whole and within 0..=2^53, so the cast is exact.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (n.fract() == 0.0 && (0.0..=MAX_SAFE_INTEGER as f64).contains(&n)).then_some(n as u64)
}

/// The lesson a command works on: the one named by `present`, or the one on the board.
pub struct LessonAt<'a> {
    pub id: Uuid,
    pub revision: Uuid,
    pub content: &'a LessonContent,
}

/// The next state. `lesson` must be the lesson `present` names, or the one being presented.
pub fn apply(
    state: &BoardState,
    op: &Op,
    lesson: Option<LessonAt<'_>>,
    presenter: &str,
    now_ms: i64,
) -> Result<BoardState, CommandError> {
    let mut next = state.clone();
    let require_lesson = || {
        lesson
            .as_ref()
            .filter(|_| state.is_presenting())
            .ok_or(CommandError::NotPresenting)
    };
    match *op {
        Op::ShowName { on } => next.name_hidden = !on,
        Op::Present {
            slide, show_name, ..
        } => {
            next.name_hidden = !show_name;
            let l = lesson.as_ref().ok_or(CommandError::NotPresenting)?;
            if l.content.slides.is_empty() {
                return Err(CommandError::EmptyLesson);
            }
            next.lesson = Some(PresentedLesson {
                id: l.id,
                revision: l.revision,
                title: l.content.title.clone(),
                slide_count: u32::try_from(l.content.slides.len()).unwrap_or(u32::MAX),
            });
            next.blanked = false;
            // A new presentation: the timers of the last one are not this one's.
            next.timers.clear();
            next.slide_index = 0;
            next.timer = TimerState::default();
            let slide = slide_in(l.content, slide)?;
            show_slide(&mut next, l.content, slide, now_ms);
        }
        Op::Next | Op::Prev | Op::Goto { .. } => {
            let l = require_lesson()?;
            let last = u32::try_from(l.content.slides.len().saturating_sub(1)).unwrap_or(u32::MAX);
            let target = match *op {
                Op::Goto { slide } => slide_in(l.content, slide)?,
                Op::Prev => state.slide_index.saturating_sub(1),
                _ => (state.slide_index + 1).min(last),
            };
            if target != state.slide_index {
                show_slide(&mut next, l.content, target, now_ms);
            }
        }
        Op::Blank { on } => next.blanked = on,
        Op::Reveal { on } => {
            let l = require_lesson()?;
            let slide = current(l.content, state)?;
            if slide.kind != SlideKind::Question {
                return Err(CommandError::WrongSlideKind("question"));
            }
            next.revealed = on;
            next.slide = Some(view(l.content, slide, on));
        }
        Op::TimerStart | Op::TimerPause | Op::TimerReset | Op::TimerAdd { .. } => {
            let l = require_lesson()?;
            if current(l.content, state)?.kind != SlideKind::Timer {
                return Err(CommandError::WrongSlideKind("timer"));
            }
            let t = &mut next.timer;
            match *op {
                Op::TimerStart if !t.running && t.remaining_ms > 0 => {
                    t.running = true;
                    t.ends_at = Some(now_ms.saturating_add(whole_ms(t.remaining_ms)));
                }
                Op::TimerPause if t.running => {
                    t.remaining_ms = t
                        .ends_at
                        .map_or(0, |end| (end - now_ms).max(0).unsigned_abs());
                    t.running = false;
                    t.ends_at = None;
                }
                Op::TimerReset => {
                    *t = TimerState {
                        duration_ms: t.duration_ms,
                        running: false,
                        ends_at: None,
                        remaining_ms: t.duration_ms,
                    }
                }
                Op::TimerAdd { ms } => {
                    // The time added counts in the duration too, so a timer ready to start
                    // stays ready (for longer) and a paused one stays paused part-way.
                    let most = u64::from(TIMER_SECONDS_MAX) * 1000;
                    t.duration_ms = (t.duration_ms + ms).min(most);
                    match t.ends_at.filter(|_| t.running) {
                        Some(end) => {
                            let left =
                                ((end - now_ms).max(0).unsigned_abs() + ms).min(t.duration_ms);
                            t.ends_at = Some(now_ms.saturating_add(whole_ms(left)));
                        }
                        None => t.remaining_ms = (t.remaining_ms + ms).min(t.duration_ms),
                    }
                }
                _ => {}
            }
        }
        Op::VideoPlay { position_ms } | Op::VideoPause { position_ms } => {
            let l = require_lesson()?;
            if current(l.content, state)?.kind != SlideKind::Video {
                return Err(CommandError::WrongSlideKind("video"));
            }
            let playing = matches!(op, Op::VideoPlay { .. });
            next.video = VideoState {
                playing,
                position_ms,
                since: playing.then_some(now_ms),
            };
        }
        Op::End => {
            // A teacher who kept their name off keeps it off the idle screen too.
            next = BoardState {
                version: state.version,
                name_hidden: state.name_hidden,
                ..BoardState::idle(state.board)
            };
        }
    }
    next.presenter = (next.is_presenting() && !next.name_hidden).then(|| Presenter {
        name: presenter.to_owned(),
    });
    // A timer of another slide that has run out meanwhile is done: it leaves with the next
    // command, whatever it is.
    next.timers
        .retain(|kept| kept.timer.ends_at.is_none_or(|end| end > now_ms));
    Ok(next)
}

/// `slide` if the lesson has a slide at that index: `present` and `goto` refuse any other.
fn slide_in(content: &LessonContent, slide: u32) -> Result<u32, CommandError> {
    match content.slides.len() {
        len if (slide as usize) < len => Ok(slide),
        len => Err(CommandError::InvalidArgs(format!(
            "slide must be from 0 to {} (the lesson has {len} slides)",
            len.saturating_sub(1)
        ))),
    }
}

fn current<'a>(content: &'a LessonContent, state: &BoardState) -> Result<&'a Slide, CommandError> {
    content
        .slides
        .get(state.slide_index as usize)
        .ok_or(CommandError::NotPresenting)
}

fn show_slide(state: &mut BoardState, content: &LessonContent, index: u32, now_ms: i64) {
    // The timer of the slide left keeps going (or stays paused part-way) until its slide
    // shows again; one never started, or run out, is not kept.
    let leaving = content.slides.get(state.slide_index as usize);
    if let Some(left) = leaving.filter(|s| s.kind == SlideKind::Timer) {
        let t = &state.timer;
        let started = t.running || t.remaining_ms < t.duration_ms;
        let ran_out =
            t.ends_at.is_some_and(|end| end <= now_ms) || (!t.running && t.remaining_ms == 0);
        if started && !ran_out {
            state.timers.push(SlideTimer {
                slide: left.id,
                index: state.slide_index,
                title: left.title.clone(),
                timer: t.clone(),
            });
        }
    }
    state
        .timers
        .retain(|kept| kept.timer.ends_at.is_none_or(|end| end > now_ms));
    if state.timers.len() > TIMERS_KEPT {
        state.timers.drain(..state.timers.len() - TIMERS_KEPT);
    }
    let slide = &content.slides[index as usize];
    let duration_ms = u64::from(slide.seconds.unwrap_or(0)) * 1000;
    state.slide_index = index;
    state.revealed = false;
    state.slide = Some(view(content, slide, false));
    state.upcoming_media = upcoming_media(content, index);
    state.timer = match state.timers.iter().position(|kept| kept.slide == slide.id) {
        Some(at) => state.timers.remove(at).timer,
        None => TimerState {
            duration_ms,
            running: false,
            ends_at: None,
            remaining_ms: duration_ms,
        },
    };
    state.video = VideoState::default();
}

/// The most `timer_add` adds at once: an hour.
pub const TIMER_ADD_MAX_MS: u64 = 3_600_000;

/// How many slides ahead a board fetches media.
const PRELOAD_SLIDES: usize = 2;

fn upcoming_media(content: &LessonContent, index: u32) -> Vec<String> {
    content
        .slides
        .iter()
        .skip(index as usize + 1)
        .take(PRELOAD_SLIDES)
        .filter_map(|slide| slide.media.clone())
        .collect()
}

/// Every media of the lesson once, from slide `index` on and then the slides before it: the
/// order a board fetches them in to hold the whole lesson, what comes next first.
pub fn lesson_media(content: &LessonContent, index: u32) -> Vec<String> {
    let (before, after) = content
        .slides
        .split_at((index as usize).min(content.slides.len()));
    let mut media: Vec<String> = Vec::new();
    for id in after.iter().chain(before).filter_map(|s| s.media.as_ref()) {
        if !media.contains(id) {
            media.push(id.clone());
        }
    }
    media
}

impl SlideView {
    /// The slide as a board shows it, in the default theme; with `revealed`, a question's
    /// answer too.
    pub fn of(slide: &Slide, revealed: bool) -> SlideView {
        SlideView {
            theme: None,
            ..view(&LessonContent::default(), slide, revealed)
        }
    }
}

/// Slide `slide` of lesson `content` as a board shows it.
fn view(content: &LessonContent, slide: &Slide, revealed: bool) -> SlideView {
    SlideView {
        id: slide.id,
        kind: slide.kind,
        title: slide.title.clone(),
        html: to_safe_html(&slide.body),
        media: slide.media.clone(),
        seconds: slide.seconds,
        answer: if revealed { slide.answer.clone() } else { None },
        layout: slide.layout,
        alt: slide.alt.clone(),
        theme: content.theme.clone(),
    }
}

/// Four letters and digits the board shows at all times and the console shows after
/// pairing, so a teacher sees which screen they paired, not just that a code matched. Derived
/// from the board's id; letters that look alike (0/O, 1/I) are left out.
pub fn fingerprint(board: Uuid) -> String {
    use sha2::{Digest, Sha256};
    const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let hash = Sha256::digest(board.as_bytes());
    let bits = u32::from_be_bytes([hash[0], hash[1], hash[2], hash[3]]);
    (0..4)
        .map(|i| ALPHABET[((bits >> (27 - 5 * i)) & 31) as usize] as char)
        .collect()
}

/// A pairing code: six digits, shown grouped 3 + 3 on the board.
pub struct PairingCode;

impl PairingCode {
    pub fn generate() -> String {
        format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000))
    }

    /// Accepts what a teacher types: digits with optional spaces or dashes.
    pub fn parse(raw: &str) -> Result<String, String> {
        let digits: String = raw.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        if digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(digits)
        } else {
            Err("A pairing code has 6 digits, as shown on the board.".into())
        }
    }
}

#[cfg(test)]
#[path = "board_tests.rs"]
mod tests;
