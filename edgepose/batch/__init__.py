"""Pose over a whole video archive: ``edgepose batch``.

One video is one task (tracking and smoothing need its frames in order). A worker holds
one :class:`~edgepose.Pipeline` for its whole life and runs each video through the frame
loop of ``edgepose run`` (:mod:`edgepose.frameloop`), so a video's JSON Lines are the
same whichever command wrote them. The parts:

- :mod:`~edgepose.batch.inputs`: videos from files, folders (recursive) and lists, and
  the output each one gets
- :mod:`~edgepose.batch.manifest`: ``DIR/manifest.jsonl``, one line per video finished
  (done or failed); what a re-run may skip
- :mod:`~edgepose.batch.worker`: one video -> one output file (temporary name, renamed
  when complete) and its manifest record
- :mod:`~edgepose.batch.local`: the workers as processes on this machine (spawn)
- :mod:`~edgepose.batch.ray_engine`: the workers as a Ray Data actor pool on a cluster
- :mod:`~edgepose.batch.runner`: plan, run on an engine, record, summarise
"""
