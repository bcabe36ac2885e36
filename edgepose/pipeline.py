"""The one frame loop, for every model family and engine:

frame -> validate (image, timestamp) -> person detector on the schedule / tracked crops
      -> estimator (crop -> model -> decode) -> ids -> smoothing -> FrameResult

The parts each have one job: a person detector (:mod:`edgepose.detectors`), an estimator
per model family (:mod:`edgepose.estimators`), one tracker with one detection schedule
and one re-identification rule (:mod:`edgepose.tracking`), one smoother
(:mod:`edgepose.smoothing`). The loop's contract is enforced here, once: a bad frame or
timestamp is an InputError and the pipeline stays usable; a constant timestamp (many
live streams) falls back to the monotonic clock with one warning; a pipeline used from two
threads at once, or after close(), raises UsageError.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
import time
import weakref

import numpy as np

from edgepose import smoothing
from edgepose.detector_thread import DetectorThread
from edgepose.detectors import PersonDetector, as_person_detector, is_blazepose_detector, open_detector
from edgepose.errors import InputError, UsageError
from edgepose.estimators import Estimate, explains, same_body, within
from edgepose.estimators.choose import open_estimator
from edgepose.image import as_color_image
from edgepose.options import Options, OptionError, default_threads
from edgepose.profiler import StageClock
from edgepose.tracking import Track, Tracker
from edgepose.types import FrameResult

log = logging.getLogger(__name__)

# New detections beyond max_people whose crops the estimator may try in one frame (a
# detection it rejects costs one run; the next candidate may be a person).
EXTRA_CROPS = 2
# The Options fields the loop itself uses, whatever the family.
LOOP_OPTIONS = frozenset({"backend", "model", "threads", "max_people", "static_image_mode",
                          "smoothing", "smoothing_min_cutoff", "smoothing_beta"})
# Interpreter threads of a person detector that runs on its own thread (video mode): it
# shares the cores with the landmark model, which keeps the pipeline's threads.
DETECTOR_THREAD_THREADS = 1

__all__ = ["Pipeline", "Options"]


class Pipeline:
    """Poses from frames, for every model family and engine.

    >>> pipe = Pipeline(model="full", max_people=2)                  # BlazePose
    >>> pipe = Pipeline(model="heavy", detector="centernet", max_people=6)
    >>> pipe = Pipeline(model="movenet-multipose", max_people=6)
    >>> pipe = Pipeline(model="rtmpose.onnx", decoder="simcc", detector="centernet")
    >>> pipe = Pipeline(backend="mediapipe-tasks", model="full")
    >>> pipe = Pipeline(person_detector=my_fn)     # my_fn(image_rgb) -> list[Detection]
    >>> result = pipe.process(frame_bgr, timestamp_ms=t)   # FrameResult
    >>> for pose in result.poses: pose.keypoints, pose.coco17, pose.track_id

    A Pipeline follows one stream: use one per thread (a second thread calling
    process() while one runs gets UsageError). ``person_detector`` (a
    :class:`~edgepose.detectors.PersonDetector` or a callable) replaces
    ``options.detector``; close() closes it too.
    """

    def __init__(self, options: Options | None = None, person_detector=None, **overrides) -> None:
        try:
            self.options = dataclasses.replace(options or Options(), **overrides)
        except TypeError as exc:  # an unknown keyword
            raise OptionError(f"{exc}; the options are the fields of edgepose.Options") from None
        o = self.options
        self.threads = capped_threads(o.threads)
        self.estimator = open_estimator(o, self.threads)
        est = self.estimator
        self.person_detector: PersonDetector | None = None
        try:
            finds = est.finds_people or est.builtin_detector is not None
            o.check_honoured(LOOP_OPTIONS | est.honours | (set() if est.finds_people else {"detector_thread"}),
                             est.family, {"detector": "it finds people itself"} if finds else None)
            when_full = est.redetect_when_full if o.redetect_when_full is None else o.redetect_when_full
            # a search re-anchors crops that follow keypoints (when_full): on the frame, not late;
            # BlazePose's detector (a few ms) and your own callable stay on the frame too
            apart = o.detector_thread and not (o.static_image_mode or est.finds_people or when_full) \
                and person_detector is None and not is_blazepose_detector(o.detector)
            if est.finds_people:
                if person_detector is not None:
                    raise OptionError(f"{est.family} finds people itself: drop person_detector")
            elif est.builtin_detector is not None:
                self.person_detector = est.builtin_detector
            else:
                self.person_detector = (as_person_detector(person_detector) if person_detector is not None
                                        else open_detector(o.detector, runtime=o.runtime, delegate=o.delegate,
                                                           provider=o.provider, threads=min(
                                                               self.threads, DETECTOR_THREAD_THREADS)
                                                           if apart else self.threads))
        except BaseException:
            est.close()
            raise
        self.tracker = Tracker(est.reid_iou, o.redetect_every, when_full)
        self.smoother = smoothing.smoother_for(o.smoothing_config)
        self._clock = _Timestamps()
        self._busy = threading.Lock()
        self._closed = False
        # video mode: the person detector searches on its own thread (detector_thread.py)
        self._searcher = DetectorThread(self.person_detector) if apart and self.person_detector else None
        if self._searcher is not None:
            weakref.finalize(self, self._searcher.close)  # a pipeline dropped without close()

    @property
    def detection_threshold(self) -> float | None:
        """The person detector's score threshold: the option, else the detector's default."""
        if self.options.min_detection_confidence is not None:
            return self.options.min_detection_confidence
        if self.person_detector is None:
            return None
        return self.person_detector.default_score(self.options.max_people > 1)

    def describe(self) -> dict:
        """What runs: backend, model (the option), model_path, model_file, runtime,
        family, detector (None when the model finds people itself), threads, and for a
        file made by ``edgepose convert``, its variant and source file."""
        est = self.estimator
        facts = est.describe()
        model = getattr(est, "model", None)
        meta = getattr(model, "metadata", None) or {}
        path = facts.get("model_path")
        detector = facts.get("detector")  # MediaPipe runs BlazePose's detector inside its graph
        if detector is None and not (est.finds_people or est.builtin_detector is not None):
            detector = self.person_detector.name
        return {"backend": self.options.backend, "model": self.options.model, "model_path": path,
                "model_file": os.path.basename(path) if path else None,
                "runtime": facts.get("runtime") or getattr(model, "runtime_label", ""),
                "family": est.family, "detector": detector, "threads": self.threads,
                "variant": meta.get("variant"), "converted_from": (meta.get("source") or {}).get("file")}

    # -- the loop -------------------------------------------------------------------------
    def process(self, image: np.ndarray, timestamp_ms: float | None = None,
                color: str = "bgr") -> FrameResult:
        """Find poses in one frame: uint8 BGR (default) or RGB with ``color="rgb"``;
        grayscale and 4-channel frames are accepted. ``timestamp_ms``: the frame's time
        (video mode), else the monotonic clock."""
        if self._closed:
            raise UsageError("this Pipeline is closed: make a new one")
        if not self._busy.acquire(blocking=False):
            raise UsageError("Pipeline.process() was called from two threads at once: a Pipeline "
                             "follows one stream; give each thread its own Pipeline")
        try:
            return self._process(image, timestamp_ms, color)
        finally:
            self._busy.release()

    def _process(self, image, timestamp_ms, color) -> FrameResult:
        clock = StageClock()
        t = clock.start()
        img, image_color = as_color_image(image, color)
        height, width = img.shape[:2]
        o = self.options
        seconds = None
        if not o.static_image_mode:
            seconds, went_back = self._clock.check(timestamp_ms)
            if went_back:
                log.warning("timestamp went back (%s ms): a new video? tracks and smoothing restart",
                            timestamp_ms)
                self.reset()
                self._clock.check(timestamp_ms)
        clock.stop("preprocess", t)
        est = self.estimator
        if est.finds_people:
            found, searched = est.find(img, image_color, clock, None if seconds is None else seconds * 1000.0)
            known = [-1] * len(found)
        else:
            found, known, searched = self._top_down(img, image_color, clock)
        poses = [e.pose for e in found]
        if o.static_image_mode:
            ids = range(len(poses))  # unrelated images: the index in the image
        else:
            ids = self.tracker.assign([e.box for e in found], known)
        for pose, track_id in zip(poses, ids):
            pose.track_id = track_id
        if o.static_image_mode:
            return FrameResult(poses, (width, height), timestamp_ms, clock.ms, searched)
        anchors = self.smoother.step_frame(poses, seconds, [e.scale for e in found],
                                           [e.anchor for e in found], clock)
        if not est.finds_people:
            self.tracker.follow([Track(e.pose.track_id, est.follow(e, a)) for e, a in zip(found, anchors)])
        poses.sort(key=lambda p: p.track_id)
        return FrameResult(poses, (width, height), timestamp_ms, clock.ms, searched)

    def _top_down(self, img: np.ndarray, color: str,
                  clock: StageClock) -> tuple[list[Estimate], list[int], bool]:
        """Tracked crops first, then the crops of new detections (when the schedule runs
        the detector); one estimate per person, the first crop of a body winning. Returns
        the estimates, the track id each was followed under (-1: new) and whether the
        detector ran."""
        o, est = self.options, self.estimator
        tracks = [] if o.static_image_mode else self.tracker.tracks
        crops = [[t.id, t.crop, None, None] for t in tracks]  # track id (-1: new), crop, its box, detection box
        detections, detect, then = self._detections(img, color, clock)
        if detections:
            detector = self.person_detector
            now = {c[0] for c in crops}
            for d in detections:
                if not (d.box[2] > d.box[0] and d.box[3] > d.box[1]):
                    continue
                crop, box = est.crop_for(detector, d)
                was = None if then is None else est.claims(then, crop)
                if was is not None and then[was][0] in now:
                    continue  # someone tracked on the searched frame, and still tracked
                claimed = est.claims([(c[0], c[1]) for c in crops], crop)
                if claimed is None:
                    crops.append([-1, crop, box, d.box])
                elif crops[claimed][0] >= 0 and est.redetect_when_full:
                    crops[claimed][1] = crop  # the detection re-anchors a crop that follows keypoints
        found: list[Estimate] = []
        known: list[int] = []
        boxes: list[tuple | None] = []  # the box whose crop found each, None: an aligned crop
        tries = o.max_people + EXTRA_CROPS  # crops of new detections, at most
        remember = not o.static_image_mode and est.builtin_detector is None  # rejected detections
        many = getattr(est, "estimate_many", None)  # the tracked crops (first) in one go
        ready = many(img, color, [c[1] for c in crops[:len(tracks)]], clock) if many and len(tracks) > 1 else []
        for k, (track_id, crop, box, seen) in enumerate(crops):
            if len(found) >= o.max_people:
                break
            if box is not None and any(explains(e.pose, box) for e in found):
                continue  # a person already found fills this box
            if track_id < 0:
                if tries == 0:
                    break
                if remember and self.tracker.rejected(seen):
                    continue  # video: nobody was there a moment ago
                tries -= 1
            estimate = ready[k] if k < len(ready) else est.estimate(img, color, crop, box is not None, clock)
            if estimate is None:
                if track_id < 0 and remember:
                    self.tracker.reject(seen)
                continue  # nobody there
            twin = next((i for i, e in enumerate(found) if same_body(estimate, e)), None)
            if twin is None:
                found.append(estimate)
                known.append(track_id)
                boxes.append(box)
            elif (box is None and track_id < 0 and known[twin] < 0 and boxes[twin] is not None
                  and within(estimate.pose, boxes[twin])):
                # a person first found through their box, then through an aligned (face-led)
                # crop whose body stays in that box: the aligned crop's pose is the better one
                # (one whose body leaves the box took in a neighbour, and is dropped)
                found[twin], boxes[twin] = estimate, None
        return found, known, detect

    def _detections(self, img: np.ndarray, color: str,
                    clock: StageClock) -> tuple[list | None, bool, list | None]:
        """The detections to merge into this frame's crops (None: none), whether a
        search's results arrived, and for those of an earlier frame the tracks' (id, crop)
        on that frame (None: this frame's). In image mode, with nobody tracked, or without
        the detector thread, the detector runs here when the schedule says; otherwise the
        thread searches the newest frame and its detections of an earlier frame are
        merged when ready, so no frame waits for it."""
        o, searcher = self.options, self._searcher
        if o.static_image_mode:
            return self.person_detector.detect(img, color, self.detection_threshold, clock), True, None
        want = self.tracker.should_detect(o.max_people)
        if searcher is None or not self.tracker.tracks:
            if want and searcher is not None:
                searcher.wait()  # nobody to follow: nothing else to do on this frame
                searcher.forget()
            self.tracker.detected(want)
            return (self.person_detector.detect(img, color, self.detection_threshold, clock) if want
                    else None), want, None
        ready = searcher.take()
        then = [(t.id, t.crop) for t in self.tracker.tracks]
        self.tracker.detected(want and searcher.submit(img, color, self.detection_threshold, then))
        return (None, False, None) if ready is None else (ready[0], True, ready[1])

    def reset(self, restart_ids: bool = False) -> None:
        """Forget every track (e.g. between unrelated videos). Ids keep counting up, unless
        ``restart_ids``: then the next frame gets what a new Pipeline would give it (one
        pipeline reused for video after video, each with its own results)."""
        self.tracker.reset(restart_ids)
        if self._searcher is not None:
            self._searcher.forget()
        self.smoother.reset()
        self._clock = _Timestamps()
        reset = getattr(self.estimator, "reset", None)
        if reset is not None:
            reset()

    def close(self) -> None:
        """Free the models; process() afterwards raises UsageError. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        with self._busy:
            if self._searcher is not None:
                self._searcher.close()
            if self.person_detector is not None and self.person_detector is not self.estimator.builtin_detector:
                self.person_detector.close()
            self.estimator.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Timestamps:
    """The frame clock in seconds: the caller's timestamps while they make sense, else the
    monotonic clock."""

    def __init__(self) -> None:
        self.last: float | None = None
        self.monotonic = False

    def check(self, timestamp_ms: float | None) -> tuple[float, bool]:
        """(seconds, went_back). InputError for a timestamp that is not a finite number;
        a repeated one switches to the monotonic clock for the rest of the stream."""
        if timestamp_ms is not None:
            if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, (int, float, np.number)) \
                    or not math.isfinite(timestamp_ms):
                raise InputError(f"timestamp_ms must be a finite number of milliseconds, got {timestamp_ms!r}")
            if self.last is not None and not self.monotonic:
                if timestamp_ms == self.last:
                    log.warning("the same timestamp twice (%s ms; many live streams report a constant): "
                                "using the monotonic clock from now on", timestamp_ms)
                    self.monotonic = True
                elif timestamp_ms < self.last:
                    return timestamp_ms / 1000.0, True
        if timestamp_ms is None or self.monotonic:
            return time.monotonic(), False
        self.last = float(timestamp_ms)
        return self.last / 1000.0, False


def capped_threads(threads: int | None) -> int:
    """The interpreter threads to use: the option, at most the machine's cores (more only
    make threads fight; 1000 made 2,001 OS threads and ran 7x slower)."""
    if threads is None:
        return default_threads()
    cores = os.cpu_count() or 1
    if threads > cores:
        log.warning("threads=%d is more than this machine's %d cores: using %d", threads, cores, cores)
        return cores
    return threads
