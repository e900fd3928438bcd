"""Reads the train rows of a dtune pre-tokenized HDF5 file (docs/DATA_FORMAT.md) for the Python
peers of the benchmarks (gpu_peer.py, train_cpu_bench.py)."""


def read_train_rows(h5_path):
    """Returns ([(ids int32 array, prompt_length)] of /train in file order, the file's pad_id)."""
    import h5py
    with h5py.File(h5_path, "r") as f:
        tokens = f["train/tokens"][:]
        offsets = f["train/offsets"][:]
        prompt = f["train/prompt_lengths"][:]
        pad_id = int(f.attrs["pad_id"])
    return [(tokens[offsets[i]:offsets[i + 1]], int(prompt[i])) for i in range(len(prompt))], pad_id
