"""Where a video's frames come from: one `FrameSource` per storage format.

`base.FrameSource` is the interface a dataset reads frames through. Its implementations:
`jpeg_folder.JpegFolder` (frames extracted as numbered JPEG files; `decoder_warnings` catches
what the JPEG decoder says about damaged data, so that such a frame is reported instead of
used) and `video_file.VideoFile` (frames decoded from encoded video files, seeking to the clip;
`video_index` finds the frames in a file). `locate` is the one rule for "frame folder or video
file" (`frames_location`, `find_video_file`) and decides `--frames_from auto`. A new storage
format is a new module here with its own `FrameSource`; nothing else changes.
"""
from data.sources.base import FrameError, FrameSource
from data.sources.jpeg_folder import JpegFolder
from data.sources.locate import find_video_file, frames_location

__all__ = ["FrameError", "FrameSource", "JpegFolder", "find_video_file", "frames_location"]
