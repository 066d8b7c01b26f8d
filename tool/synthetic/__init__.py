"""The synthetic action data set, one concept a module:

    actions      joint-motion actions: a cycle phase -> an OpenPose-18 body pose
    drawing      colours and sub-pixel OpenCV shapes
    scenes       the backgrounds (one context per class)
    figures      the stick figures and the objects in their hands
    plan         the classes, the generator's parameters and the per-video plans
    layout       where the files go, the marker files, the byte-stable JSON writer
    annotations  the pose files, annotation files and label files
    video        rendering one video, and all of them over worker processes
    dataset      generate_dataset: plan, render, annotate, mark complete

`tool/make_synthetic_dataset.py` is the command line; the files are the real Kinetics and
Mimetics on-disk formats, so the project's ordinary loaders read them.
"""
