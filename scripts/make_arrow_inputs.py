#!/usr/bin/env python3
"""Writes the rows of a JSON / JSON Lines file as the Parquet and Arrow inputs `dtune pretokenize`
reads, with pyarrow (the writer the Hub's Parquet files and `datasets` use), for
tests/data/arrow_rows_test.cpp, which checks they give the same rows as the JSON.

Usage: .venv/bin/python scripts/make_arrow_inputs.py ROWS.json[l] OUT_DIR
Writes into OUT_DIR:
  rows.parquet         row groups of 7 rows (reading crosses row groups), string columns,
                       message lists as list<struct<role: string, content: string>>
  rows_large.parquet   the same with large_string / large_list columns
  rows.arrow           Arrow IPC file format (Feather v2), record batches of 5 rows
  rows_stream.arrow    Arrow IPC stream format
  ds/                  the layout of datasets' save_to_disk: data-0000i-of-00002.arrow (IPC
                       streams) listed in state.json's _data_files, plus dataset_info.json
  truncated.parquet    rows.parquet cut to half its bytes
  wrong_type.parquet   the first string column stored as int64 lengths (a column of the wrong type)
  future_version.arrow rows.arrow with its footer's metadata version set to 99, as a writer newer
                       than any Arrow release would mark it
"""
import json
import os
import sys

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import struct


def read_rows(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def large(t):
    """t with string -> large_string and list -> large_list, recursively."""
    if pa.types.is_string(t):
        return pa.large_string()
    if pa.types.is_list(t):
        return pa.large_list(large(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, large(f.type)) for f in t])
    return t


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(os.path.join(out, "ds"), exist_ok=True)
    table = pa.Table.from_pylist(read_rows(src))
    pq.write_table(table, os.path.join(out, "rows.parquet"), row_group_size=7)
    big = table.cast(pa.schema([pa.field(f.name, large(f.type)) for f in table.schema]))
    pq.write_table(big, os.path.join(out, "rows_large.parquet"), row_group_size=7)
    with ipc.new_file(os.path.join(out, "rows.arrow"), table.schema) as w:
        for b in table.to_batches(max_chunksize=5):
            w.write_batch(b)
    with ipc.new_stream(os.path.join(out, "rows_stream.arrow"), table.schema) as w:
        w.write_table(table, max_chunksize=5)
    half = table.num_rows // 2
    files = []
    for i, part in enumerate([table.slice(0, half), table.slice(half)]):
        name = f"data-{i:05d}-of-00002.arrow"
        with ipc.new_stream(os.path.join(out, "ds", name), table.schema) as w:
            w.write_table(part)
        files.append({"filename": name})
    with open(os.path.join(out, "ds", "state.json"), "w") as f:
        json.dump({"_data_files": files, "_fingerprint": "test", "_format_type": None, "_split": "train"}, f)
    with open(os.path.join(out, "ds", "dataset_info.json"), "w") as f:
        json.dump({"features": {}}, f)
    with open(os.path.join(out, "rows.parquet"), "rb") as f:
        data = f.read()
    with open(os.path.join(out, "truncated.parquet"), "wb") as f:
        f.write(data[: len(data) // 2])
    # The IPC file footer is a flatbuffer Footer table whose first field is `version: short`.
    data = bytearray(open(os.path.join(out, "rows.arrow"), "rb").read())
    footer_len = struct.unpack("<i", data[-10:-6])[0]
    start = len(data) - 10 - footer_len
    table_at = start + struct.unpack("<I", data[start:start + 4])[0]
    vtable_at = table_at - struct.unpack("<i", data[table_at:table_at + 4])[0]
    version_at = table_at + struct.unpack("<H", data[vtable_at + 4:vtable_at + 6])[0]
    data[version_at:version_at + 2] = struct.pack("<h", 99)
    with open(os.path.join(out, "future_version.arrow"), "wb") as f:
        f.write(data)
    first = table.schema.names[0]
    if pa.types.is_string(table.schema.field(first).type):
        lengths = pa.compute.utf8_length(table.column(first)).cast(pa.int64())
        pq.write_table(table.set_column(0, first, lengths), os.path.join(out, "wrong_type.parquet"))


if __name__ == "__main__":
    main()
