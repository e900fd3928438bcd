"""Oracle for safetensors_test: loads a file with the Python safetensors package and prints, per
tensor in header order, its dtype, shape and float64 values, plus the metadata, as JSON."""
import json
import sys

import torch
from safetensors import safe_open

with safe_open(sys.argv[1], framework="pt") as f:
    out = {"metadata": f.metadata(), "tensors": {}}
    for k in f.keys():
        t = f.get_tensor(k)
        out["tensors"][k] = {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape),
                             "values": t.to(torch.float64).flatten().tolist()}
print(json.dumps(out))
