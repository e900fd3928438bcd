#!/usr/bin/env python3
"""Per-operator self time of a Chrome trace written by libtorch's profiler
(DTUNE_BENCH_TRACE=FILE build/bin/dtune_model_bench ...): each event's duration minus that of
the events nested in it on the same thread, summed by name, largest first.

  python3 bench/trace_self_time.py TRACE.json [--top 30]
"""
import argparse
import collections
import json


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args()
    events = [e for e in json.load(open(args.trace)) if e.get("ph") == "X"]
    by_thread = collections.defaultdict(list)
    for e in events:
        by_thread[e["tid"]].append(e)
    self_us, count = collections.Counter(), collections.Counter()
    for thread_events in by_thread.values():
        thread_events.sort(key=lambda e: (e["ts"], -e["dur"]))
        open_events = []
        for e in thread_events:
            while open_events and open_events[-1]["ts"] + open_events[-1]["dur"] <= e["ts"]:
                open_events.pop()
            if open_events:
                self_us[open_events[-1]["name"]] -= e["dur"]
            self_us[e["name"]] += e["dur"]
            count[e["name"]] += 1
            open_events.append(e)
    total = sum(self_us.values())
    print(f"{total / 1e3:.0f} ms of operator self time in {len(events)} events")
    for name, us in self_us.most_common(args.top):
        print(f"{us / 1e3:9.1f} ms {100 * us / total:5.1f} %  x{count[name]:<6d} {name}")


if __name__ == "__main__":
    main()
