"""Decoders for model families users bring: pure functions from raw output tensors to
points, boxes and edgepose types, with the tensor layouts in each docstring (and in
``docs/model_layouts.md``).

Every decoder takes ``to_image``, the (2, 3) affine that maps model-input pixels to image
pixels (the same matrix the preprocessing warped with: see :mod:`.geometry`), so one
decoder serves letterboxed, stretched and cropped inputs alike.

- :mod:`.heatmap`    SimpleBaseline / HRNet / ViTPose heatmaps (argmax, quarter / DARK)
- :mod:`.simcc`      RTMPose SimCC x / y classification vectors
- :mod:`.yolo_pose`  YOLO-pose: boxes + score + K keypoints per anchor, NMS
- :mod:`.posenet`    PoseNet / PersonLab: heatmaps, offsets, displacements, greedy decoding
- :mod:`.movenet`    MoveNet single-pose (and its crop-region tracking) and MultiPose
- :mod:`.nanodet`    NanoDet person detector (GFL distribution boxes, 3 strides)
- :mod:`.centernet`  CenterNet person detector (top-100 boxes)
- :mod:`.geometry`   input transforms, NMS, box -> square ROI
- :mod:`.preprocess` input size / normalisation / channel-order specs for the CLI flags
"""
