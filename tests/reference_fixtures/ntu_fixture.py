# Copied unchanged (but for these 3 lines) from ../shared/fixtures/ntu_fixture.py, the shared
# reference-format writers (see ../shared/fixtures/README.md), so that CI on a clean clone,
# where ../shared may be absent, runs tests/test_reference_fixtures_loaders.py too.
"""Write a small NTU RGB+D style data set (frames, .skeleton files, COCO json) for checks.

Usage: python ntu_fixture.py OUT_DIR [--videos N] [--frames F] [--seed S]
Layout: OUT_DIR/frames/nturgb+d_rgb_s{setup}/{name}/%06d.jpg,
        OUT_DIR/nturgb+d_skeletons/{name}.skeleton, OUT_DIR/NTU_test.json, OUT_DIR/NTU_train.json
"""
import argparse, json, math, os
import numpy as np
import cv2

# COCO-layout files usually carry the object category 'person' (not the action classes).
CATEGORIES = {'categories': [{'id': 1, 'name': 'person'}]}

H, W = 270, 480  # original frame size recorded in the json (colour coords are in these pixels)


def body_joints(rng, t, frames, cx, cy, scale, wave):
    base = np.array([
        [0, 0.35], [0, 0.05], [0, -0.3], [0, -0.45],            # pelvis, chest, neck, head
        [-0.2, -0.25], [-0.3, 0.0], [-0.35, 0.2], [-0.37, 0.25],  # R arm
        [0.2, -0.25], [0.3, 0.0], [0.35, 0.2], [0.37, 0.25],      # L arm
        [-0.1, 0.4], [-0.12, 0.7], [-0.13, 1.0], [-0.15, 1.05],   # R leg
        [0.1, 0.4], [0.12, 0.7], [0.13, 1.0], [0.15, 1.05],       # L leg
        [0, -0.2], [-0.39, 0.28], [-0.36, 0.29], [0.39, 0.28], [0.36, 0.29]])
    ang = wave * math.sin(2 * math.pi * t / frames * 3)
    for j in (5, 6, 7, 21, 22):  # swing the right arm
        v = base[j] - base[4]
        base[j] = base[4] + [v[0] * math.cos(ang) - v[1] * math.sin(ang), v[0] * math.sin(ang) + v[1] * math.cos(ang)]
    xy = base * scale + [cx, cy] + rng.normal(0, 1.0, base.shape)
    return xy


def write_video(root, name, setup, frames, rng, bodies, nan_frac):
    fdir = os.path.join(root, 'frames', f'nturgb+d_rgb_s{setup}', name)
    os.makedirs(fdir, exist_ok=True)
    yy, xx = np.mgrid[0:H, 0:W]
    lines = [str(frames)]
    params = [(rng.uniform(120, 360), rng.uniform(90, 150), rng.uniform(90, 130), rng.uniform(0.3, 1.2)) for _ in range(bodies)]
    for t in range(frames):
        img = np.stack([(127 + 100 * np.sin(xx / (17 + c * 5) + t * 0.2 + c) * np.cos(yy / 23)).astype(np.uint8) for c in range(3)], -1)
        body_lines = []
        for b, (cx, cy, sc, wave) in enumerate(params):
            xy = body_joints(rng, t, frames, cx, cy, sc, wave)
            body_lines.append(f'{72057594037931101 + b} 0 1 1 1 1 0 0.1 0.2 2')
            body_lines.append('25')
            for j in range(25):
                x, y = xy[j]
                if rng.random() < nan_frac:
                    x = y = float('nan')
                else:
                    cv2.circle(img, (int(x), int(y)), 3, (255, 255, 255), -1)
                body_lines.append(f'0.1 0.2 3.0 250.5 200.5 {x:.4f} {y:.4f} 0.9 0.1 0.2 0.3 2'.replace('nan', 'NaN'))
        lines.append(str(bodies))
        lines += body_lines
        cv2.imwrite(os.path.join(fdir, '%06d.jpg' % (t + 1)), img)
    os.makedirs(os.path.join(root, 'nturgb+d_skeletons'), exist_ok=True)
    with open(os.path.join(root, 'nturgb+d_skeletons', name + '.skeleton'), 'w') as f:
        f.write('\n'.join(lines) + '\n')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('out')
    ap.add_argument('--videos', type=int, default=3)
    ap.add_argument('--frames', type=int, default=64)
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    images, anns = [], []
    for v in range(a.videos):
        setup = 1 + v % 2
        name = f'S{setup:03d}C001P00{v+1}R001A{v+1:03d}'
        write_video(a.out, name, setup, a.frames + 3 * v, rng, bodies=1 + v % 2, nan_frac=0.03 if v == 1 else 0.0)
        images.append({'id': v, 'setup_idx': setup, 'file_name': name, 'skeleton_file_name': name + '.skeleton',
                       'height': H, 'width': W, 'frame_num': a.frames + 3 * v})
        anns.append({'id': v, 'image_id': v, 'category_id': 1, 'action_label': v % 60})
    db = {'images': images, 'annotations': anns, **CATEGORIES}
    for split in ('test', 'train'):
        with open(os.path.join(a.out, f'NTU_{split}.json'), 'w') as f:
            json.dump(db, f)


if __name__ == '__main__':
    main()
