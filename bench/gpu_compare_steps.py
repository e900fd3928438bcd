"""Compares two dtune runs' first two optimizer steps (metrics.jsonl): step-1 loss and gradient
norm, step-2 loss (after one update, so it sees the gradients too). Exits 1 when the worst
relative difference exceeds --limit. bench/gpu.sh uses it to check dtune's packed attention
(model.attention=auto) against libtorch's SDPA with a mask (model.attention=reference)."""
import argparse
import json
import sys


def train_rows(path):
    with open(path) as f:
        rows = [json.loads(line) for line in f]
    rows = [r for r in rows if r.get("kind") == "train"]
    if len(rows) < 2:
        sys.exit(f"{path}: {len(rows)} train steps logged, need 2")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run", help="metrics.jsonl of the run under test")
    ap.add_argument("reference", help="metrics.jsonl of the reference run")
    ap.add_argument("--limit", type=float, required=True, help="largest allowed relative difference")
    args = ap.parse_args()
    a, b = train_rows(args.run), train_rows(args.reference)
    pairs = [("step-1 loss", a[0]["loss"], b[0]["loss"]),
             ("step-1 grad_norm", a[0]["grad_norm"], b[0]["grad_norm"]),
             ("step-2 loss", a[1]["loss"], b[1]["loss"])]
    worst = max(abs(x - y) / max(abs(y), 1e-12) for _, x, y in pairs)
    print("  " + "; ".join(f"{n} {x:.6g} vs {y:.6g}" for n, x, y in pairs)
          + f"; worst relative difference {worst:.2e} (limit {args.limit:g})")
    return 0 if worst <= args.limit else 1


if __name__ == "__main__":
    sys.exit(main())
