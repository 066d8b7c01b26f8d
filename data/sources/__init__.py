"""Where a video's frames come from: one `FrameSource` per storage format.

`base.FrameSource` is the interface a dataset reads frames through; `jpeg_folder.JpegFolder`
(frames extracted as numbered JPEG files, the format of every data set here) is its one
implementation; `decoder_warnings` catches what the JPEG decoder says about damaged data, so
that such a frame is reported instead of used. A new storage format (e.g. encoded video files) is a new module here with its
own `FrameSource`, passed to a dataset in its `LoadingOptions`; nothing else changes.
"""
from data.sources.base import FrameError, FrameSource
from data.sources.jpeg_folder import JpegFolder

__all__ = ["FrameError", "FrameSource", "JpegFolder"]
