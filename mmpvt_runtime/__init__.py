"""Exported mmpvt models without PyTorch: onnxruntime + numpy + cv2 only (this package imports
neither torch nor any OpenMMLab package, so it installs and runs where they are absent).

``OnnxModel('model.onnx')(bgr_image)`` reproduces ``model.predict`` of the exported detector,
segmentor or classifier from the file's graphs and metadata. Modules, by job: :mod:`.preprocess`
(resize, normalise, pad), :mod:`.boxes` (anchors, decoding, clipping, NMS), :mod:`.dense`
(RetinaNet / ATSS / GFL), :mod:`.two_stage` (Faster / Mask / Cascade R-CNN), :mod:`.detr`,
:mod:`.classify` (classifiers: resize and crop, softmax, top-k), :mod:`.model` (sessions and
dispatch by task), :mod:`.draw` and :mod:`.outputs` (drawings and prediction files as
tools/image_demo.py writes them).
"""
from .boxes import (batched_nms, best_detections, clip_to_image, decode, decode_boxes,
                    decode_distances, grid_anchors, nms, to_original)
from .classify import classification, resize_and_crop, softmax, top_k
from .dense import dense_detections
from .detr import detr_detections, padding_mask
from .draw import (draw, draw_classification, draw_detections, draw_segmentation, label_text,
                   random_palette)
from .model import InputSizeError, ModelFileError, OnnxModel
from .outputs import (OutputWriteError, classification_json, output_paths, prediction_json,
                      read_image, save_outputs, shared_output_name, unwritable_reason)
from .preprocess import preprocess
from .two_stage import map_roi_levels, paste_masks, rpn_proposals, two_stage_detections

__all__ = [
    'InputSizeError', 'ModelFileError', 'OnnxModel', 'OutputWriteError', 'batched_nms',
    'best_detections', 'classification', 'classification_json', 'clip_to_image', 'decode',
    'decode_boxes', 'decode_distances', 'dense_detections', 'detr_detections', 'draw',
    'draw_classification', 'draw_detections', 'draw_segmentation', 'grid_anchors', 'label_text',
    'map_roi_levels', 'nms', 'output_paths', 'padding_mask', 'paste_masks', 'prediction_json',
    'preprocess', 'random_palette', 'read_image', 'resize_and_crop', 'rpn_proposals',
    'save_outputs', 'shared_output_name', 'softmax', 'to_original', 'top_k', 'two_stage_detections',
    'unwritable_reason'
]
