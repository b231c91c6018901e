"""Benchmark: does a transfer law predict MuIT mixture runs better than independent laws, and
does it change the plan?

Run from the repository root, on a closed loop's outputs (no training happens here):

    .venv/bin/plan-fit runs/demo/results.csv --out /tmp/t16-fit
    .venv/bin/python bench/bench_transfer.py --laws /tmp/t16-fit/laws.json \\
        --validation runs/demo/validate/validation.csv --budgets 640 20k

It fits the transfer law (`fits.transfer`: one tau, Huber on log residuals, a bootstrap over
mixture runs) on every mixture run, leaves each allocation's runs out in turn (tau fitted on
the others) and prints a Markdown report: tau with its interval, the mean absolute error of
the left-out runs' per-language predictions with independent laws (tau = 0) and with the
transfer law, the per-language mean residual (actual - predicted) both ways, and at each
budget the transfer-aware plan beside the independent plan (`plan-allocate --reference none`)
and the baselines, each scored by both laws.
"""

from __future__ import annotations

import argparse

import numpy as np

from fits import read_laws
from fits.transfer import fit_transfer, predict, read_mixture_runs
from muit_core import parse_count
from planner import PlannerAllocator, baseline_allocators
from planner.problem import build_problem
from planner.transfer import TransferAllocator, transfer_value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laws", required=True)
    parser.add_argument("--validation", required=True)
    parser.add_argument("--budgets", nargs="+", default=["640", "20k"])
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args()

    laws = read_laws(args.laws)
    runs = read_mixture_runs(args.validation, laws.metric)
    law = fit_transfer(laws, runs, n_bootstrap=args.bootstrap, seed=0)
    out = [
        "## Fit",
        "",
        f"tau = {law.tau:.4f}, {law.level:.0%} bootstrap interval [{law.low:.4f}, "
        f"{law.high:.4f}] ({law.n_bootstrap} draws over {law.n_runs} mixture runs of "
        f"{law.n_mixtures} allocations; metric {law.metric}).",
        "",
        "## Leave-one-mixture-out (mean absolute error of per-language predictions, nats)",
        "",
        "| left out | runs | tau fitted on the rest | independent (tau = 0) | transfer |",
        "|---|---|---|---|---|",
    ]
    for h in law.held_out:
        out.append(
            f"| {h.mixture} | {h.n_runs} | {h.tau:.4f} | {h.mae_independent:.4f} | "
            f"{h.mae_transfer:.4f} |"
        )
    out.append(
        f"| **pooled** | {law.n_runs} | | **{law.mae_independent:.4f}** | "
        f"**{law.mae_transfer:.4f}** |"
    )
    out += [
        "",
        f"In sample: independent {law.in_sample_independent:.4f}, transfer "
        f"{law.in_sample_transfer:.4f}. Selected: {law.selected}.",
        "",
        "Mean residual per language, actual - predicted (nats; negative: the mixture did "
        "better than the law says):",
        "",
        "| language | independent | transfer |",
        "|---|---|---|",
    ]
    res0 = np.nanmean(runs.actual - predict(laws, runs, 0.0), axis=0)
    res1 = np.nanmean(runs.actual - predict(laws, runs, law.tau), axis=0)
    for j, code in enumerate(runs.languages):
        out.append(f"| {code} | {res0[j]:+.4f} | {res1[j]:+.4f} |")

    problem = build_problem(laws, tuple(laws.fits))
    model = transfer_value(problem.values, law.tau)
    weights = np.asarray(problem.constraints.weights, dtype=float)
    for text in args.budgets:
        budget = float(round(parse_count(text)))
        transfer, cert = TransferAllocator(law.tau).solve(
            problem.values, budget, problem.constraints
        )
        allocations = [
            PlannerAllocator().allocate(problem.values, budget, problem.constraints),
            transfer,
            *(
                a.allocate(problem.values, budget, problem.constraints)
                for a in baseline_allocators()
            ),
        ]
        names = [a.allocator if a.allocator != "planner" else "independent" for a in allocations]
        out += [
            "",
            f"## Plans at {text} examples (--reference none)",
            "",
            f"Transfer-aware plan: {transfer.method}; free languages {', '.join(cert.free)}.",
            "",
            "| allocator | " + " | ".join(problem.languages) + " | predicted mean "
            f"{laws.metric}, independent laws | with transfer |",
            "|---" * (len(problem.languages) + 3) + "|",
        ]
        for name, a in zip(names, allocations, strict=True):
            x = np.asarray(a.amounts, dtype=float)
            ind = problem.sign * float(weights @ problem.values.value(x) / weights.sum())
            tr = problem.sign * model.objective(x, weights)
            cells = " | ".join(f"{e:,}" for e in a.examples)
            out.append(f"| {name} | {cells} | {ind:.4f} | {tr:.4f} |")
    print("\n".join(out))


if __name__ == "__main__":
    main()
