"""Synthetic action videos: joint-motion actions (`actions`) and figure/scene drawing (`render`).

Used by `tool/make_synthetic_dataset.py`, which writes them in the real Kinetics and Mimetics
on-disk formats so that the project's ordinary loaders read them.
"""
