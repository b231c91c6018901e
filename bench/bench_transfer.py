"""Benchmark: does a transfer law predict MuIT mixture runs better than independent laws (and
than a constant in-mixture bonus), and does it change the plan?

Run from the repository root, on a closed loop's outputs (no training happens here):

    .venv/bin/plan-fit runs/demo/results.csv --out /tmp/t16-fit
    .venv/bin/python bench/bench_transfer.py --laws /tmp/t16-fit/laws.json \\
        --validation runs/demo/validate/validation.csv --budgets 640 20k

It fits every transfer form of `fits.transfer` (shared tau, similarity-weighted tau, one tau
per receiving language) and the two yardsticks (independent laws; a constant in-mixture level
shift per language) on every mixture run, leaves each allocation's runs out in turn, and
prints a Markdown report: the leave-one-mixture-out error per model, each form's parameters,
the per-language mean residual (actual - predicted) per model, what each model says of the
languages a run left out (trained at 0 own examples), and at each budget the plan of the kept
form beside the independent plan (`plan-allocate --reference none`) and the baselines, each
scored by the independent laws and by the kept form.
"""

from __future__ import annotations

import argparse

import numpy as np

from fits import read_laws
from fits.transfer import fit_transfer
from fits.transfer_fit import FORMS, INDEPENDENT, fit_model
from fits.transfer_runs import read_mixture_runs
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
    models = list(law.lomo_mae)
    out = [
        "## Leave-one-mixture-out (mean absolute error of per-language predictions, nats)",
        "",
        f"{law.n_runs} mixture runs of {law.n_mixtures} allocations; every model fitted on the "
        "other allocations' runs.",
        "",
        "| left out | runs | " + " | ".join(models) + " |",
        "|---|---" + "|---" * len(models) + "|",
    ]
    for h in law.held_out:
        cells = " | ".join(f"{h.mae[m]:.4f}" for m in models)
        out.append(f"| {h.mixture} | {h.n_runs} | {cells} |")
    cells = " | ".join(f"**{law.lomo_mae[m]:.4f}**" for m in models)
    out.append(f"| **pooled** | {law.n_runs} | {cells} |")
    out += [
        "",
        "In sample: " + ", ".join(f"{m} {v:.4f}" for m, v in law.in_sample_mae.items()) + ".",
        f"Kept form: {law.summary()}; selected: {law.selected}.",
        *(f"Note: {n}." for n in law.notes),
        "",
        "## Every form fitted on all runs",
        "",
    ]
    fitted = {m: fit_model(laws, runs, m) for m in models}
    for form in FORMS:
        if form in fitted:
            params = fitted[form].params
            out.append(f"- {form}: " + ", ".join(f"{k} = {v:.3f}" for k, v in params.items()))
    predicted = {m: model.predict(laws, runs) for m, model in fitted.items()}
    out += [
        "",
        "## Mean residual per language, actual - predicted (nats; negative: the mixture did "
        "better than the model says)",
        "",
        "| language | " + " | ".join(models) + " |",
        "|---" * (len(models) + 1) + "|",
    ]
    for j, code in enumerate(runs.languages):
        cells = " | ".join(
            f"{np.nanmean(runs.actual[:, j] - predicted[m][:, j]):+.4f}" for m in models
        )
        out.append(f"| {code} | {cells} |")
    left_out = [
        (i, j)
        for i in range(len(runs.runs))
        for j in range(len(runs.languages))
        if runs.examples[i, j] == 0 and np.isfinite(runs.actual[i, j])
    ]
    if left_out:
        out += [
            "",
            "## Languages a run left out (0 own examples, the others' 640): measured vs each "
            "model, in-sample fits (nats)",
            "",
            "| run | language | measured | untuned (sweep, 0 examples) | "
            + " | ".join(m for m in models if m != INDEPENDENT)
            + " |",
            "|---" * (len(models) + 3) + "|",
        ]
        for i, j in left_out:
            name, seed = runs.runs[i]
            cells = " | ".join(f"{predicted[m][i, j]:.4f}" for m in models if m != INDEPENDENT)
            out.append(
                f"| {name} s{seed} | {runs.languages[j]} | {runs.actual[i, j]:.4f} | "
                f"{predicted[INDEPENDENT][i, j]:.4f} | {cells} |"
            )

    problem = build_problem(laws, tuple(laws.fits))
    matrix, factors = law.matrix_for(problem.languages), law.factors_for(problem.languages)
    model = transfer_value(problem.values, matrix, factors)
    weights = np.asarray(problem.constraints.weights, dtype=float)
    for text in args.budgets:
        budget = float(round(parse_count(text)))
        allocator = TransferAllocator(matrix, label=f"{law.form} form", factors=factors)
        transfer, cert = allocator.solve(problem.values, budget, problem.constraints)
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
            f"{laws.metric}, independent laws | with the {law.form} transfer law |",
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
