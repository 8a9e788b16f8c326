"""Compare per-group accuracy of two evaluations (``metrics.json`` from ``genderclass evaluate``).

Prints, for each value of an attribute (default: race) among items passing an age filter
(default: adults, age >= 20), n, accuracy with a 95% Wilson interval for both runs, and the worst
group and the gap between best and worst group for each run. A benchmark-style script: it prints
numbers, it asserts nothing.

    python scripts/compare_groups.py eval-before/metrics.json eval-after/metrics.json --min-age 20
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from genderclass.evaluation.metrics import wilson_interval


def group_accuracy(
    metrics: dict, attribute: str, min_age: int, max_age: int, threshold: float
) -> dict[str, tuple[int, int]]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for item in metrics["predictions"]:
        age = int(item.get("age", -1))
        if attribute not in item or not (min_age <= age <= max_age):
            continue
        predicted = "female" if item["p_female"] >= threshold else "male"
        counts[item[attribute]][0] += int(predicted == item["label"])
        counts[item[attribute]][1] += 1
    return {k: (v[0], v[1]) for k, v in sorted(counts.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--attribute", default="race")
    parser.add_argument("--min-age", type=int, default=20)
    parser.add_argument("--max-age", type=int, default=200)
    args = parser.parse_args()
    runs = {}
    for name, path in (("before", args.before), ("after", args.after)):
        metrics = json.loads(path.read_text())
        threshold = metrics.get("threshold", metrics.get("model", {}).get("threshold", 0.5))
        runs[name] = group_accuracy(metrics, args.attribute, args.min_age, args.max_age, threshold)
    print(f"{args.attribute} (age {args.min_age}-{args.max_age})      before                       after")
    for group in sorted(set(runs["before"]) | set(runs["after"])):
        cells = []
        for name in ("before", "after"):
            correct, n = runs[name].get(group, (0, 0))
            lo, hi = wilson_interval(correct, n)
            cells.append(f"n={n:5d} {correct / max(n, 1):6.1%} [{lo:.1%}, {hi:.1%}]")
        print(f"{group:24s} {cells[0]}   {cells[1]}")
    for name in ("before", "after"):
        acc = {g: c / n for g, (c, n) in runs[name].items() if n >= 30}
        worst = min(acc, key=acc.get)
        overall = sum(c for c, _ in runs[name].values()) / max(1, sum(n for _, n in runs[name].values()))
        print(
            f"{name}: overall {overall:.1%}, worst {worst} {acc[worst]:.1%}, gap {max(acc.values()) - acc[worst]:.1%}"
        )


if __name__ == "__main__":
    main()
