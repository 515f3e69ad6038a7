// The console's controls of a timer and of a video: their buttons, the video's slider, and
// what the board says of its sound. Part of teach.js (the console), which hands it the live
// channel, the page's state and how to send a command; it draws only these controls.

import { $, t } from './ui.js';
import { formatClock, timerRemaining, timersElsewhere, videoPosition } from './slides.js';

export function createMediaControls({ live, ui, command, currentState }) {
  const controls = {
    timer: () => {
      const s = currentState();
      if (s?.slide?.kind !== 'timer' || !s.timer) return;
      if (timerRemaining(s.timer, live.serverNow()) <= 0) {
        // Time is up: start again from the full duration (the server runs them in order).
        command(ui.viewBoard, 'timer_reset');
        command(ui.viewBoard, 'timer_start');
      } else {
        command(ui.viewBoard, s.timer.running ? 'timer_pause' : 'timer_start');
      }
    },
    timerReset: () => currentState()?.timer && command(ui.viewBoard, 'timer_reset'),
    timerAdd: () => currentState()?.timer && command(ui.viewBoard, 'timer_add', { ms: 60000 }),
    video: () => {
      const s = currentState();
      if (!s?.video) return;
      if ($('#video-toggle').dataset.ended === 'yes') return command(ui.viewBoard, 'video_play', { position_ms: 0 });
      const position_ms = Math.round(videoPosition(s.video, live.serverNow()));
      command(ui.viewBoard, s.video.playing ? 'video_pause' : 'video_play', { position_ms });
    },
    // Played again from where it is: the board asks its browser for sound once more.
    videoSound: () => {
      const s = currentState();
      if (!s?.video?.playing) return;
      command(ui.viewBoard, 'video_play', { position_ms: Math.round(videoPosition(s.video, live.serverNow())) });
    },
    // The board goes to the second the teacher drops the slider on, playing or paused as it was.
    videoSeek: (event) => {
      const s = currentState();
      if (!s?.video) return;
      const position_ms = Math.max(0, Math.round(Number(event.currentTarget.value) * 1000));
      command(ui.viewBoard, s.video.playing ? 'video_play' : 'video_pause', { position_ms });
    },
  };

  /** Says when the board plays the video without sound (its browser waits for a touch). */
  function renderVideoSound() {
    const state = currentState();
    const silent = state?.slide?.kind === 'video' && state.video?.playing && ui.boards.get(ui.viewBoard)?.muted;
    $('#video-sound').hidden = !silent;
  }

  /**
   * The slider follows the video as the board plays it; its length comes from the preview's
   * own copy of the video, once the browser has read it. Left alone while the teacher drags.
   */
  function renderVideoSeek() {
    const label = $('#video-seek-label');
    const state = currentState();
    if (label.hidden || !state?.video) return;
    const slider = $('#video-seek');
    const duration = previewDuration();
    const known = Number.isFinite(duration) && duration > 0;
    let at = videoPosition(state.video, live.serverNow()) / 1000;
    // Played to its end, the board's video stands on its last frame.
    const ended = known && state.video.playing && at >= duration;
    if (known) at = Math.min(at, duration);
    // Until its length is known the slider reaches as far as the video has played (never the
    // length of the video on an earlier slide).
    slider.max = String(known ? Math.ceil(duration) : Math.max(1, Math.ceil(at)));
    if (document.activeElement !== slider) slider.value = String(Math.floor(at));
    const length = known ? ' / ' + formatClock(duration * 1000) : '';
    $('#video-time').textContent = formatClock(at * 1000) + length;
    const toggle = $('#video-toggle');
    const action = ended ? t('teach.videoReplay') : state.video.playing ? t('teach.videoPause') : t('teach.videoPlay');
    if (toggle.textContent !== action) toggle.textContent = action;
    toggle.dataset.ended = ended ? 'yes' : '';
  }

  /**
   * The length of the current slide's video, from the preview's own copy. A WebM recorded in
   * a browser says none (Infinity) until it has been read to its end, so the preview is asked
   * once to seek far past it, which makes the browser work it out, and then back.
   */
  function previewDuration() {
    const video = $('#preview video');
    if (!video) return NaN;
    if (video.duration === Infinity && !video.dataset.lengthAsked) {
      video.dataset.lengthAsked = 'yes';
      const at = video.currentTime;
      video.addEventListener('durationchange', () => (video.currentTime = at), { once: true });
      video.currentTime = Number.MAX_SAFE_INTEGER;
    }
    return video.duration;
  }

  /** The timer button label follows the clock: "Start timer", "Pause timer (00:42)". */
  function renderTimerButtons() {
    const state = currentState();
    const elsewhere = state?.lesson ? timersElsewhere(state, live.serverNow()).join(' · ') : '';
    if ($('#timers-elsewhere').textContent !== elsewhere) $('#timers-elsewhere').textContent = elsewhere;
    const button = $('#timer-toggle');
    if (!state?.timer || button.hidden) return;
    const ms = timerRemaining(state.timer, live.serverNow());
    const label =
      ms <= 0
        ? t('teach.timerRestart', { time: formatClock(state.timer.duration_ms) })
        : t(state.timer.running ? 'teach.timerPause' : 'teach.timerStart', { time: formatClock(ms) });
    if (button.textContent !== label) button.textContent = label;
  }

  function bind() {
    $('#timer-toggle').addEventListener('click', controls.timer);
    $('#timer-reset').addEventListener('click', controls.timerReset);
    $('#timer-add').addEventListener('click', controls.timerAdd);
    $('#video-toggle').addEventListener('click', controls.video);
    $('#video-seek').addEventListener('change', controls.videoSeek);
    $('#video-sound-retry').addEventListener('click', controls.videoSound);
  }

  return { bind, renderVideoSeek, renderVideoSound, renderTimerButtons };
}
