"""Per-frame vision: video sources, YuNet faces, the face crop, tracking, the ONNX age model and per-customer age."""
