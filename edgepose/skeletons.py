"""Keypoint layouts as data: names, edges, and the COCO-17 view of BlazePose-33."""

from __future__ import annotations

import enum


class BlazePoseLandmark(enum.IntEnum):
    """The 33 body landmarks of BlazePose, in model output order."""

    NOSE = 0
    LEFT_EYE_INNER = 1
    LEFT_EYE = 2
    LEFT_EYE_OUTER = 3
    RIGHT_EYE_INNER = 4
    RIGHT_EYE = 5
    RIGHT_EYE_OUTER = 6
    LEFT_EAR = 7
    RIGHT_EAR = 8
    MOUTH_LEFT = 9
    MOUTH_RIGHT = 10
    LEFT_SHOULDER = 11
    RIGHT_SHOULDER = 12
    LEFT_ELBOW = 13
    RIGHT_ELBOW = 14
    LEFT_WRIST = 15
    RIGHT_WRIST = 16
    LEFT_PINKY = 17
    RIGHT_PINKY = 18
    LEFT_INDEX = 19
    RIGHT_INDEX = 20
    LEFT_THUMB = 21
    RIGHT_THUMB = 22
    LEFT_HIP = 23
    RIGHT_HIP = 24
    LEFT_KNEE = 25
    RIGHT_KNEE = 26
    LEFT_ANKLE = 27
    RIGHT_ANKLE = 28
    LEFT_HEEL = 29
    RIGHT_HEEL = 30
    LEFT_FOOT_INDEX = 31
    RIGHT_FOOT_INDEX = 32


class CocoKeypoint(enum.IntEnum):
    """The 17 keypoints of COCO, in annotation order."""

    NOSE = 0
    LEFT_EYE = 1
    RIGHT_EYE = 2
    LEFT_EAR = 3
    RIGHT_EAR = 4
    LEFT_SHOULDER = 5
    RIGHT_SHOULDER = 6
    LEFT_ELBOW = 7
    RIGHT_ELBOW = 8
    LEFT_WRIST = 9
    RIGHT_WRIST = 10
    LEFT_HIP = 11
    RIGHT_HIP = 12
    LEFT_KNEE = 13
    RIGHT_KNEE = 14
    LEFT_ANKLE = 15
    RIGHT_ANKLE = 16


_B = BlazePoseLandmark
BLAZEPOSE_CONNECTIONS = frozenset({
    (_B.NOSE, _B.LEFT_EYE_INNER), (_B.LEFT_EYE_INNER, _B.LEFT_EYE),
    (_B.LEFT_EYE, _B.LEFT_EYE_OUTER), (_B.LEFT_EYE_OUTER, _B.LEFT_EAR),
    (_B.NOSE, _B.RIGHT_EYE_INNER), (_B.RIGHT_EYE_INNER, _B.RIGHT_EYE),
    (_B.RIGHT_EYE, _B.RIGHT_EYE_OUTER), (_B.RIGHT_EYE_OUTER, _B.RIGHT_EAR),
    (_B.MOUTH_LEFT, _B.MOUTH_RIGHT),
    (_B.LEFT_SHOULDER, _B.RIGHT_SHOULDER),
    (_B.LEFT_SHOULDER, _B.LEFT_ELBOW), (_B.LEFT_ELBOW, _B.LEFT_WRIST),
    (_B.LEFT_WRIST, _B.LEFT_PINKY), (_B.LEFT_WRIST, _B.LEFT_INDEX),
    (_B.LEFT_WRIST, _B.LEFT_THUMB), (_B.LEFT_PINKY, _B.LEFT_INDEX),
    (_B.RIGHT_SHOULDER, _B.RIGHT_ELBOW), (_B.RIGHT_ELBOW, _B.RIGHT_WRIST),
    (_B.RIGHT_WRIST, _B.RIGHT_PINKY), (_B.RIGHT_WRIST, _B.RIGHT_INDEX),
    (_B.RIGHT_WRIST, _B.RIGHT_THUMB), (_B.RIGHT_PINKY, _B.RIGHT_INDEX),
    (_B.LEFT_SHOULDER, _B.LEFT_HIP), (_B.RIGHT_SHOULDER, _B.RIGHT_HIP),
    (_B.LEFT_HIP, _B.RIGHT_HIP),
    (_B.LEFT_HIP, _B.LEFT_KNEE), (_B.LEFT_KNEE, _B.LEFT_ANKLE),
    (_B.LEFT_ANKLE, _B.LEFT_HEEL), (_B.LEFT_HEEL, _B.LEFT_FOOT_INDEX),
    (_B.LEFT_ANKLE, _B.LEFT_FOOT_INDEX),
    (_B.RIGHT_HIP, _B.RIGHT_KNEE), (_B.RIGHT_KNEE, _B.RIGHT_ANKLE),
    (_B.RIGHT_ANKLE, _B.RIGHT_HEEL), (_B.RIGHT_HEEL, _B.RIGHT_FOOT_INDEX),
    (_B.RIGHT_ANKLE, _B.RIGHT_FOOT_INDEX),
})

_C = CocoKeypoint
COCO_CONNECTIONS = frozenset({
    (_C.NOSE, _C.LEFT_EYE), (_C.NOSE, _C.RIGHT_EYE),
    (_C.LEFT_EYE, _C.RIGHT_EYE), (_C.LEFT_EYE, _C.LEFT_EAR),
    (_C.RIGHT_EYE, _C.RIGHT_EAR), (_C.LEFT_EAR, _C.LEFT_SHOULDER),
    (_C.RIGHT_EAR, _C.RIGHT_SHOULDER),
    (_C.LEFT_SHOULDER, _C.RIGHT_SHOULDER),
    (_C.LEFT_SHOULDER, _C.LEFT_ELBOW), (_C.LEFT_ELBOW, _C.LEFT_WRIST),
    (_C.RIGHT_SHOULDER, _C.RIGHT_ELBOW), (_C.RIGHT_ELBOW, _C.RIGHT_WRIST),
    (_C.LEFT_SHOULDER, _C.LEFT_HIP), (_C.RIGHT_SHOULDER, _C.RIGHT_HIP),
    (_C.LEFT_HIP, _C.RIGHT_HIP),
    (_C.LEFT_HIP, _C.LEFT_KNEE), (_C.LEFT_KNEE, _C.LEFT_ANKLE),
    (_C.RIGHT_HIP, _C.RIGHT_KNEE), (_C.RIGHT_KNEE, _C.RIGHT_ANKLE),
})

# The COCO-17 view maps by name: every COCO keypoint has a BlazePose landmark of the same name.
BLAZEPOSE_TO_COCO = tuple(BlazePoseLandmark[k.name].value for k in CocoKeypoint)


def normalize_joint_name(name: str) -> str:
    """'Right-ankle', 'right ankle' and 'RIGHT_ANKLE' all become 'RIGHT_ANKLE'."""
    return name.strip().upper().replace("-", "_").replace(" ", "_")


def blazepose_index(name: str) -> int | None:
    """BlazePose landmark index of a joint named in another layout, or None when BlazePose
    has no landmark of that name (head top, neck, pelvis...): such joints are left out."""
    member = BlazePoseLandmark.__members__.get(normalize_joint_name(name))
    return None if member is None else member.value
