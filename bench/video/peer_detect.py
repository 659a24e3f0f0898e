#!/usr/bin/env python3
"""The peer for bench/video/run: the straightforward python3-opencv script a user
would otherwise write to do what `nightshift-video detect` does (same detectors,
same parameters, same JSON Lines output). Kept as the reference the C++ step is
measured against; not used at run time.

  peer_detect.py --input VIDEO --detector hog|mog2|dnn [--stride N] [--model W --config C]
"""
import argparse
import json
import sys
import time

import cv2
import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", required=True)
    ap.add_argument("--detector", default="hog", choices=["hog", "mog2", "dnn"])
    ap.add_argument("--stride", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model")
    ap.add_argument("--config", default="")
    ap.add_argument("--input-size", default="320x320")
    ap.add_argument("--confidence", type=float, default=None)
    ap.add_argument("--nms", type=float, default=0.45)
    ap.add_argument("--min-area", type=float, default=400)
    ap.add_argument("--out", default="peer_detections.jsonl")
    a = ap.parse_args()
    cv2.setNumThreads(a.threads)

    cap = cv2.VideoCapture(a.input)
    if not cap.isOpened():
        sys.exit(f"cannot open {a.input}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0

    if a.detector == "hog":
        hog = cv2.HOGDescriptor()
        hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        conf = 0.0 if a.confidence is None else a.confidence
    elif a.detector == "mog2":
        mog2 = cv2.createBackgroundSubtractorMOG2(500, 16, True)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        conf = 0.0 if a.confidence is None else a.confidence
    else:
        net = cv2.dnn.readNet(a.model, a.config)
        out_names = net.getUnconnectedOutLayersNames()
        iw, ih = (int(v) for v in a.input_size.split("x"))
        conf = 0.4 if a.confidence is None else a.confidence

    start = time.time()
    lines = []
    processed = 0
    index = -1
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        index += 1
        if index % a.stride:
            continue
        processed += 1
        boxes, scores = [], []
        if a.detector == "hog":
            rects, weights = hog.detectMultiScale(frame, hitThreshold=0, winStride=(8, 8), padding=(0, 0),
                                                  scale=1.05, groupThreshold=2)
            for r, w in zip(rects, np.ravel(weights) if len(rects) else []):
                if w >= conf:
                    boxes.append([int(v) for v in r])
                    scores.append(float(w))
        elif a.detector == "mog2":
            mask = mog2.apply(frame)
            _, mask = cv2.threshold(mask, 200, 255, cv2.THRESH_BINARY)
            mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
            mask = cv2.dilate(mask, kernel, iterations=2)
            contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            for c in contours:
                area = cv2.contourArea(c)
                if area < a.min_area:
                    continue
                x, y, w, h = cv2.boundingRect(c)
                boxes.append([x, y, w, h])
                scores.append(min(1.0, area / max(1.0, w * h)))
        else:
            blob = cv2.dnn.blobFromImage(frame, 1 / 255.0, (iw, ih), (0, 0, 0), swapRB=True, crop=False)
            net.setInput(blob)
            H, W = frame.shape[:2]
            for out in net.forward(out_names):
                rows = out.reshape(-1, out.shape[-1])
                cls = np.argmax(rows[:, 5:], axis=1)
                score = rows[:, 4] * rows[np.arange(len(rows)), 5 + cls]
                for r, s in zip(rows[score >= conf], score[score >= conf]):
                    w, h = r[2] * W, r[3] * H
                    boxes.append([int(r[0] * W - w / 2), int(r[1] * H - h / 2), int(w), int(h)])
                    scores.append(float(s))
        if a.detector != "mog2" and boxes:
            keep = cv2.dnn.NMSBoxes(boxes, scores, 0.0, a.nms)
            keep = np.ravel(keep) if len(keep) else []
            boxes = [boxes[i] for i in keep]
            scores = [scores[i] for i in keep]
        for (x, y, w, h), s in zip(boxes, scores):
            lines.append(json.dumps({"frame": index, "time": round(index / fps, 4), "x": x, "y": y, "w": w,
                                     "h": h, "class": "person", "score": round(s, 4)}))
    elapsed = time.time() - start
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + ("\n" if lines else ""))
    print(json.dumps({"frames": index + 1, "processed": processed, "detections": len(lines),
                      "seconds": round(elapsed, 3), "fps": round(processed / elapsed, 2) if elapsed else 0}))


if __name__ == "__main__":
    main()
