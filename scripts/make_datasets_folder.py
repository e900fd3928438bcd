#!/usr/bin/env python3
"""Writes the rows of a JSON / JSON Lines file as a folder saved by the `datasets` package itself
(Dataset.from_list(rows).save_to_disk(OUT, num_shards=3)), for tests/data/arrow_rows_test.cpp,
which checks `dtune pretokenize` reads it as the same rows as the JSON. (make_arrow_inputs.py
writes the same layout with pyarrow alone; this is the real writer, pinned in scripts/setup.sh.)

Usage: .venv/bin/python scripts/make_datasets_folder.py ROWS.json[l] OUT_DIR
Prints the datasets version and the files it wrote.
"""
import os
import sys

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # nothing here needs the Hub
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import datasets  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_arrow_inputs import read_rows  # noqa: E402  (JSON array or JSON Lines, as there)

datasets.disable_progress_bars()


def main():
    src, out = sys.argv[1], sys.argv[2]
    ds = datasets.Dataset.from_list(read_rows(src))
    ds.save_to_disk(out, num_shards=3)
    print(f"datasets {datasets.__version__}: {ds.num_rows} rows -> {out}: {sorted(os.listdir(out))}")


if __name__ == "__main__":
    main()
