"""The frame loop: source -> pipeline -> sinks, for ``edgepose run`` and for every
``edgepose batch`` worker, so that a video gives the same JSON Lines whichever of them
ran it."""

from __future__ import annotations

import time


def run_frames(source, pipe, sinks, stats, *, layout: str = "blazepose", overlay: bool = False,
               verbose: bool = False, progress=None, stop=None, on_frame=None) -> str:
    """The frame loop: read a frame, find poses, draw them once if a sink shows images,
    hand frame, result and drawing to every sink, time it all into ``stats`` (a Profiler),
    then call ``on_frame()`` (a heartbeat: systemd's watchdog). Returns why it ended:
    "source" (the source ended), "sink" (a sink was stopped: q or Esc in a window) or
    "stop" (``stop.is_set()``, e.g. ``stopping.StopSignals``: checked between frames, so
    every frame read is processed and handed to every sink)."""
    from edgepose.draw import draw_overlay, draw_poses
    from edgepose.quiet import native_stderr_quiet

    render = any(sink.wants_canvas for sink in sinks)
    frames = iter(source)
    while True:
        if stop is not None and stop.is_set():
            return "stop"
        t0 = time.perf_counter_ns()
        frame = next(frames, None)
        if frame is None:
            return "stop" if stop is not None and stop.is_set() else "source"
        decode_ms = (time.perf_counter_ns() - t0) / 1e6
        # MediaPipe starts its graph (and prints) on the first frame
        with native_stderr_quiet(stats.frames == 0 and not verbose):
            result = pipe.process(frame.image, frame.timestamp_ms)
        stages = {"decode": decode_ms, **result.stages_ms}
        canvas = None
        if render:
            t1 = time.perf_counter_ns()
            canvas = draw_poses(frame.image, result.poses, layout=layout)
            if overlay:
                draw_overlay(canvas, stats.rolling_fps, stages, len(result.poses))
            stages["render"] = (time.perf_counter_ns() - t1) / 1e6
        for sink in sinks:
            sink.write(frame, result, canvas)
        stats.add(stages, len(result.poses), result.detector_ran,
                  tuple(p.track_id for p in result.poses))
        if progress is not None:
            progress.update(1)
        if on_frame is not None:
            on_frame()
        if any(sink.stopped for sink in sinks):
            return "sink"
