"""Real-time detection: micro-batching, inference, flow table, EVE alerts, ONNX export."""
