"""Live pose for kiosks: :class:`LiveEngine` (capture thread -> one Pipeline on its own
thread -> results and events), camera loss and recovery (:mod:`edgepose.live.capture`), a
web app (:mod:`edgepose.live.web`, ``edgepose serve``; needs ``pip install
'edgepose[serve]'``) and a loopback MJPEG replay server for tests (:mod:`edgepose.live.replay`)."""

from edgepose.live.capture import STATES, Capture, LatestFrame
from edgepose.live.engine import LiveEngine
from edgepose.live.publish import (
           AsyncSubscription,
           LiveResult,
           PeopleEvents,
           Subscription,
)

__all__ = [
           "STATES",
           "AsyncSubscription",
           "Capture",
           "LatestFrame",
           "LiveEngine",
           "LiveResult",
           "PeopleEvents",
           "Subscription",
]
