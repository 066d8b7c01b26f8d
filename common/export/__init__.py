"""The test-time network as a file that runs without this project's Python code: ONNX (for
onnxruntime) or a `torch.export` program (`tool/export.py`, docs/export.md)."""
