# Copied unchanged (but for these 3 lines) from ../shared/fixtures/kinetics_fixture.py, the shared
# reference-format writers (see ../shared/fixtures/README.md), so that CI on a clean clone,
# where ../shared may be absent, runs tests/test_reference_fixtures_loaders.py too.
"""Write small Kinetics50-val and Mimetics50 style data sets (frames, pose json, COCO json) for checks.

Usage: python kinetics_fixture.py OUT_DIR [--videos N] [--seed S] [--train N]
Writes OUT_DIR/Kinetics/data/... and OUT_DIR/Mimetics/data/... in the layouts of the paper's release.
Poses move with the frame index, so a loader that reads the wrong frame's pose is caught.
"""
import argparse, json, math, os
import numpy as np
import cv2

# COCO-layout files usually carry the object category 'person' (not the action classes).
CATEGORIES = {'categories': [{'id': 1, 'name': 'person'}]}

BASE = np.array([[0, -.8], [0, -.6], [-.2, -.6], [-.3, -.35], [-.35, -.1], [.2, -.6], [.3, -.35], [.35, -.1],
                 [-.12, 0], [-.14, .35], [-.15, .7], [.12, 0], [.14, .35], [.15, .7], [-.05, -.85], [.05, -.85],
                 [-.1, -.82], [.1, -.82]])


def person(t, cx, cy, sc, speed):
    p = BASE.copy()
    p[4] = p[3] + [0.25 * math.sin(t * speed), -0.2 * math.cos(t * speed)]
    p[:, 0] += 0.004 * t  # slow drift: each frame's pose is distinct
    return p * sc + [cx, cy]


def frames_and_people(rng, n_frames, h, w, n_people):
    params = [(rng.uniform(.3, .7) * w, rng.uniform(.45, .55) * h, rng.uniform(.25, .4) * h, rng.uniform(.1, .4)) for _ in range(n_people)]
    yy, xx = np.mgrid[0:h, 0:w]
    for t in range(n_frames):
        img = np.stack([(127 + 90 * np.sin(xx / (13 + 4 * c) + t * 0.15) * np.cos(yy / (19 + c))).astype(np.uint8) for c in range(3)], -1)
        people = []
        for k, (cx, cy, sc, sp) in enumerate(params):
            p = person(t, cx, cy, sc, sp)
            score = np.clip(rng.uniform(0.3, 1.0, 18) - 0.25 * k, 0, 1)
            score[rng.random(18) < 0.05] = 0
            for j in range(18):
                if score[j] > 0:
                    cv2.circle(img, (int(p[j, 0]), int(p[j, 1])), 3, (255, 255, 255), -1)
            people.append((p, score))
        yield img, people


def coco(images, anns):
    return {'images': images, 'annotations': anns, **CATEGORIES}


YT = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-'


def write_train(kroot, videos, rng):
    """Kinetics50 train split: YouTube-style ids (they may hold '_' and '-'), frame folders named
    <id>_<start>_<end> (6-digit seconds), skeleton and label files keyed by the bare id."""
    images, anns, labels = [], [], {}
    sk = os.path.join(kroot, 'kinetics-skeleton', 'kinetics_train')
    os.makedirs(sk, exist_ok=True)
    for v in range(videos):
        h, w, n = 256, 340, 40 + 3 * v
        vid = ''.join(YT[i] for i in rng.integers(0, len(YT), 11))
        if v % 2 == 0:
            vid = vid[:4] + '_' + vid[5:]
        start = int(rng.integers(0, 300))
        name, seq = f'{vid}_{start:06d}_{start + 10:06d}', f'train class {v % 3}'
        fdir = os.path.join(kroot, 'frames', 'train_256', seq, name)
        os.makedirs(fdir, exist_ok=True)
        data = []
        for t, (img, people) in enumerate(frames_and_people(rng, n, h, w, 1 + v % 2)):
            cv2.imwrite(os.path.join(fdir, '%06d.jpg' % (t + 1)), img)
            data.append({'frame_index': t + 1, 'skeleton': [
                {'pose': [float(x) for xy in zip(p[:, 0] / w, p[:, 1] / h) for x in xy], 'score': [float(s) for s in sc]}
                for p, sc in people]})
        with open(os.path.join(sk, vid + '.json'), 'w') as f:
            json.dump({'data': data, 'label': seq, 'label_index': v % 3}, f)
        labels[vid] = {'has_skeleton': True, 'label': seq, 'label_index': v % 3}
        images.append({'id': 100 + v, 'seq_name': seq, 'file_name': name, 'height': h, 'width': w, 'frame_num': n})
        anns.append({'id': 100 + v, 'image_id': 100 + v, 'category_id': 1, 'action_label': v % 3, 'action_name': seq})
    with open(os.path.join(kroot, 'kinetics-skeleton', 'kinetics_train_label.json'), 'w') as f:
        json.dump(labels, f)
    with open(os.path.join(kroot, 'Kinetics50_train.json'), 'w') as f:
        json.dump(coco(images, anns), f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('out')
    ap.add_argument('--videos', type=int, default=3)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--train', type=int, default=0, help='also write a Kinetics50 train split of N videos')
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    # Kinetics50 val: frames already resized to shorter side 256, poses normalised, frame_index from 1
    kroot = os.path.join(a.out, 'Kinetics', 'data')
    images, anns, labels = [], [], {}
    for v in range(a.videos):
        h, w, n = 256, 340, 60 + 5 * v
        seq, name = f'class {v}', f'vid{v:02d}_{rng.integers(1e6):06d}'
        fdir = os.path.join(kroot, 'frames', 'val_256', seq, name)
        os.makedirs(fdir, exist_ok=True)
        data = []
        for t, (img, people) in enumerate(frames_and_people(rng, n, h, w, 1 + v % 3)):
            cv2.imwrite(os.path.join(fdir, '%06d.jpg' % (t + 1)), img)
            data.append({'frame_index': t + 1, 'skeleton': [
                {'pose': [float(x) for xy in zip(p[:, 0] / w, p[:, 1] / h) for x in xy], 'score': [float(s) for s in sc]}
                for p, sc in people]})
        sk = os.path.join(kroot, 'kinetics-skeleton', 'kinetics_val')
        os.makedirs(sk, exist_ok=True)
        with open(os.path.join(sk, name + '.json'), 'w') as f:
            json.dump({'data': data, 'label': seq, 'label_index': v}, f)
        labels[name] = {'has_skeleton': True, 'label': seq, 'label_index': v}
        images.append({'id': v, 'seq_name': seq, 'file_name': name, 'height': h, 'width': w, 'frame_num': n})
        anns.append({'id': v, 'image_id': v, 'category_id': 1, 'action_label': (7 * v) % 50, 'action_name': seq})
    with open(os.path.join(kroot, 'kinetics-skeleton', 'kinetics_val_label.json'), 'w') as f:
        json.dump(labels, f)
    with open(os.path.join(kroot, 'Kinetics50_val.json'), 'w') as f:
        json.dump(coco(images, anns), f)
    if a.train:
        write_train(kroot, a.train, rng)
    # Mimetics50: original-size frames, poses in pixels with per-person scores, null for empty frames
    mroot = os.path.join(a.out, 'Mimetics', 'data')
    images, anns = [], []
    for v in range(a.videos):
        h, w, n = 360, 480, 62 + 4 * v
        seq, name = f'mime {v}', f'm{v:02d}'
        fdir = os.path.join(mroot, 'frames', seq, name)
        os.makedirs(fdir, exist_ok=True)
        poses, scores = [], []
        for t, (img, people) in enumerate(frames_and_people(rng, n, h, w, 1 + (v + 1) % 3)):
            cv2.imwrite(os.path.join(fdir, '%06d.jpg' % (t + 1)), img)
            if t % 17 == 5:
                poses.append(None); scores.append(None); continue
            poses.append([float(x) for p, sc in people for j in range(18) for x in (p[j, 0], p[j, 1], sc[j])])
            scores.append([float(rng.uniform(0.5, 1.0)) for _ in people])
        pdir = os.path.join(mroot, 'pose_results', seq, name)
        os.makedirs(pdir, exist_ok=True)
        with open(os.path.join(pdir, 'data.json'), 'w') as f:
            json.dump({'pose': poses, 'score': scores}, f)
        images.append({'id': v, 'seq_name': seq, 'file_name': name, 'height': h, 'width': w, 'frame_num': n})
        anns.append({'id': v, 'image_id': v, 'category_id': 1, 'action_label': (11 * v + 3) % 50, 'action_name': seq})
    with open(os.path.join(mroot, 'Mimetics50.json'), 'w') as f:
        json.dump(coco(images, anns), f)


if __name__ == '__main__':
    main()
