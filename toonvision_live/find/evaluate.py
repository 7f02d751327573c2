"""Precision and recall of the nametag search (:func:`toonvision_live.find.nametags.propose_cog_boxes`)
against VOC truth, for tests and diagnosis."""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np

from toonvision_live.find.nametags import propose_cog_boxes
from toonvision_live.geometry import Boxes, as_xyxy_array, greedy_matches, iou_matrix


def evaluate_proposals(frames_and_truth: Iterable[tuple[np.ndarray, Boxes] | tuple[np.ndarray, Boxes, Boxes]],
                       iou: float = 0.5) -> dict[str, float | int]:
    """Precision/recall of :func:`propose_cog_boxes` at IoU >= ``iou``.

    Items are ``(frame_rgb, truth_xyxy)`` or ``(frame_rgb, truth_xyxy, ignore_xyxy)``; as in Pascal
    VOC, a proposal matching an ignored box (a "difficult" Cog, mostly hidden) counts neither way.
    Also reports the mean IoU of the matched boxes, the mean height and width ratio proposal/truth
    of the matched pairs, and the mean milliseconds per frame.
    """

    tp = fp = fn = frames = 0
    ious: list[float] = []
    h_ratio: list[float] = []
    w_ratio: list[float] = []
    seconds = 0.0
    for item in frames_and_truth:
        frame_rgb, truth = item[0], item[1]
        ignore = as_xyxy_array(item[2] if len(item) > 2 else [])
        t0 = time.perf_counter()
        pred = [p.body_xyxy for p in propose_cog_boxes(frame_rgb)]
        seconds += time.perf_counter() - t0
        frames += 1
        p_arr, t_arr = as_xyxy_array(pred), as_xyxy_array(truth)
        m = iou_matrix(p_arr, t_arr)
        pairs = greedy_matches(m, iou)
        matched = {r for r, _ in pairs}
        rest = [r for r in range(len(p_arr)) if r not in matched]
        if rest and len(ignore):
            ignored = {rest[r] for r, _ in greedy_matches(iou_matrix(p_arr[rest], ignore), iou)}
            rest = [r for r in rest if r not in ignored]
        tp += len(pairs)
        fp += len(rest)
        fn += len(t_arr) - len(pairs)
        for r, c in pairs:
            ious.append(float(m[r, c]))
            h_ratio.append(float((p_arr[r, 3] - p_arr[r, 1]) / max(1e-9, t_arr[c, 3] - t_arr[c, 1])))
            w_ratio.append(float((p_arr[r, 2] - p_arr[r, 0]) / max(1e-9, t_arr[c, 2] - t_arr[c, 0])))
    return {
        "frames": frames, "tp": tp, "fp": fp, "fn": fn,
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "mean_iou": float(np.mean(ious)) if ious else 0.0,
        "height_ratio": float(np.mean(h_ratio)) if h_ratio else 0.0,
        "width_ratio": float(np.mean(w_ratio)) if w_ratio else 0.0,
        "ms_per_frame": 1000.0 * seconds / frames if frames else 0.0,
    }
