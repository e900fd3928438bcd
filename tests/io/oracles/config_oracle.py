"""Oracle for model_config_test: saves configs with transformers and prints what transformers
reads back, as JSON. Usage: python config_oracle.py OUT_DIR  -> {variant: {field: value}}"""
import json
import os
import sys

from transformers import AutoConfig, GenerationConfig, LlamaConfig, Qwen2Config

out = sys.argv[1]
variants = {
    "llama_tied": LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                              num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                              rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=[2, 7],
                              max_position_embeddings=512),
    "llama3_scaled": LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=1, head_dim=32,
                                 tie_word_embeddings=False, attention_bias=True, mlp_bias=True,
                                 rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                                  "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                  "original_max_position_embeddings": 8192},
                                 max_position_embeddings=131072, eos_token_id=5),
    "qwen2_untied": Qwen2Config(vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=3,
                                num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
                                rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
                                rms_norm_eps=1e-6, eos_token_id=3, use_sliding_window=False),
}
result = {}
for name, cfg in variants.items():
    d = os.path.join(out, name)
    cfg.save_pretrained(d)
    if name == "llama_tied":
        GenerationConfig(bos_token_id=1, eos_token_id=[2, 9]).save_pretrained(d)
    c = AutoConfig.from_pretrained(d)
    rp = c.rope_parameters or {}
    eos = c.eos_token_id if isinstance(c.eos_token_id, list) else [c.eos_token_id]
    if name == "llama_tied":
        eos = eos + [i for i in GenerationConfig.from_pretrained(d).eos_token_id if i not in eos]
    result[name] = {
        "model_type": c.model_type, "vocab_size": c.vocab_size, "hidden_size": c.hidden_size,
        "intermediate_size": c.intermediate_size, "num_hidden_layers": c.num_hidden_layers,
        "num_attention_heads": c.num_attention_heads, "num_key_value_heads": c.num_key_value_heads,
        "head_dim": getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads,
        "max_position_embeddings": c.max_position_embeddings, "rms_norm_eps": c.rms_norm_eps,
        "rope_theta": rp.get("rope_theta"), "rope_type": rp.get("rope_type", "default"),
        "factor": rp.get("factor", 1.0), "low_freq_factor": rp.get("low_freq_factor", 1.0),
        "high_freq_factor": rp.get("high_freq_factor", 4.0),
        "original_max_position_embeddings": rp.get("original_max_position_embeddings", 8192),
        "tie_word_embeddings": c.tie_word_embeddings, "eos_token_ids": eos,
        "attention_bias": getattr(c, "attention_bias", True), "mlp_bias": getattr(c, "mlp_bias", False),
    }
print(json.dumps(result))
