#!/usr/bin/env python3
"""Writes fuzz_row_index's seed corpus: the real arrays of each pretokenized split in
tests/fixtures (every *.h5), in the harness's input layout (fuzz_row_index.cpp), once with the
token ids and once with the index only. Run from the repository root with the project venv:

  .venv/bin/python tools/fuzz_row_index/make_corpus.py
"""
import glob
import os
import struct

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def encode(offsets, prompts, n_tokens, expected_rows, vocab_size, tokens):
    head = struct.pack("<IBqqq", len(prompts), 1, n_tokens, expected_rows, vocab_size)
    return head + offsets.astype("<i8").tobytes() + prompts.astype("<i4").tobytes() + tokens.astype("<i4").tobytes()


def main():
    out = os.path.join(HERE, "corpus")
    os.makedirs(out, exist_ok=True)
    for path in sorted(glob.glob("tests/fixtures/**/*.h5", recursive=True)):
        with h5py.File(path, "r") as f:
            vocab = int(f.attrs["vocab_size"])
            for split in ("train", "eval"):
                if split not in f:
                    continue
                g = f[split]
                offsets, prompts, tokens = g["offsets"][:], g["prompt_lengths"][:], g["tokens"][:]
                name = f"{os.path.splitext(os.path.basename(path))[0]}_{split}"
                args = (offsets, prompts, int(offsets[-1]), len(prompts), vocab)
                with open(os.path.join(out, name + ".bin"), "wb") as w:
                    w.write(encode(*args, tokens))
                with open(os.path.join(out, name + "_index_only.bin"), "wb") as w:
                    w.write(encode(*args, np.zeros(0, dtype=np.int32)))


if __name__ == "__main__":
    main()
