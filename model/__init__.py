"""jina-embeddings-v4 inference on stock transformers Qwen2.5-VL + PEFT (no trust_remote_code)."""
