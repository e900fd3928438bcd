#!/usr/bin/env python3
"""Writes the safetensors fixtures of tests/io/ with the Python `safetensors` package (the oracle).

Usage: .venv/bin/python scripts/gen_io_fixtures.py   (rewrites tests/fixtures/io/safetensors/)

mixed.safetensors holds one tensor per case the reader must handle: F32/F16/BF16/F64/I64/I32/U8/BOOL,
a scalar, an empty tensor and a 3-D tensor, with metadata. mixed_expected.json lists, per tensor,
its dtype, shape and values as float64 (all values are exactly representable in their dtype, so
the C++ test compares exactly).
"""
import json
import os

import torch
from safetensors.torch import save_file

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "io", "safetensors")


def main():
    os.makedirs(root, exist_ok=True)
    g = torch.Generator().manual_seed(1234)
    tensors = {
        "f32": torch.randn(3, 5, generator=g),
        "f16": (torch.randn(4, 3, generator=g) * 4).half(),
        "bf16": (torch.randn(2, 7, generator=g) * 100).bfloat16(),
        "f64": torch.randn(5, generator=g, dtype=torch.float64),
        "i64": torch.tensor([[-3, 2**40], [7, -2**50]], dtype=torch.int64),
        "i32": torch.arange(-4, 8, dtype=torch.int32).reshape(3, 4),
        "u8": torch.arange(0, 250, 25, dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 4),
        "cube": torch.randn(2, 3, 4, generator=g),
    }
    save_file(tensors, os.path.join(root, "mixed.safetensors"), metadata={"format": "pt", "source": "gen_io_fixtures"})
    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
             torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL"}
    expected = {k: {"dtype": names[v.dtype], "shape": list(v.shape),
                    "values": v.to(torch.float64).flatten().tolist()} for k, v in tensors.items()}
    with open(os.path.join(root, "mixed_expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    print(f"gen_io_fixtures: wrote {root}")


if __name__ == "__main__":
    main()
