"""The analysis notebook runs headless on a sweep folder and renders its plots.

Two folders: the real smoke sweep's (`smoke_sweep`, conftest.py), run through the main
command's last step (`notebooks/execute.py --summary`: fit, plan, notebook, summary); and
`fits.synthetic`'s realistic results table with both objectives, so the SFT vs DFT cell runs
too, fitted and planned through `plan-fit` and `plan-allocate`'s `main()` with a small bootstrap.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest
from test_verdict import table as validation_table

from fits.analysis import by_objective, load_groups, primary_group
from fits.cli import main as plan_fit
from fits.synthetic import synthetic_results
from muit_core import ConfigError, DataError
from planner.analysis import load_plan, what_if
from planner.cli import main as plan_allocate

pytest.importorskip("nbclient", reason="needs the notebook extra: pip install -e '.[notebook]'")
nbformat = pytest.importorskip("nbformat")

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _load_execute() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "notebook_execute", ROOT / "notebooks/execute.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


execute_module = _load_execute()


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sweep folder: results.csv (sft and dft), one laws file per objective, a mixture."""
    folder = tmp_path_factory.mktemp("sweep")
    table = pd.concat(
        [synthetic_results(objective="sft", seed=0), synthetic_results(objective="dft", seed=1)]
    )
    table.to_csv(folder / "results.csv", index=False)
    assert plan_fit([str(folder / "results.csv"), "--bootstrap", "100", "--no-plots"]) == 0
    laws = primary_group(load_groups(folder)).path
    out = folder / "allocate"
    assert plan_allocate([str(laws), "--budget", "40k", "--out", str(out)]) == 0
    (folder / "validate").mkdir()
    validation_table().to_csv(folder / "validate" / "validation.csv", index=False)
    return folder


def _images(cell: nbformat.NotebookNode) -> list[bytes]:
    return [
        base64.b64decode(out["data"]["image/png"])
        for out in cell.get("outputs", [])
        if "image/png" in out.get("data", {})
    ]


def test_notebook_executes_on_a_sweep_and_writes_html(sweep: Path) -> None:
    notebook_path, html_path = execute_module.execute(sweep)
    assert notebook_path == sweep / "analysis.ipynb" and html_path == sweep / "analysis.html"
    executed = nbformat.read(notebook_path, as_version=4)
    cells = {cell.get("id"): cell for cell in executed.cells}
    errors = [
        cell_id
        for cell_id, cell in cells.items()
        if any(out.get("output_type") == "error" for out in cell.get("outputs", []))
    ]
    assert not errors
    assert repr(str(sweep)) in cells["parameters"].source
    fits_images = _images(cells["fits-plot"])
    assert fits_images and fits_images[0].startswith(PNG_MAGIC)
    for cell_id in ("data-plot", "extrap-plot", "plan-plot", "frontier-plot", "objectives"):
        assert _images(cells[cell_id]), cell_id
    assert len(_images(cells["closed-loop"])) == 2  # predicted vs actual, objectives
    assert "Band coverage: 3 of 8" in "".join(
        o.get("text", "") for o in cells["closed-loop"].outputs
    )
    html = html_path.read_text(encoding="utf-8")
    assert html.count("data:image/png;base64") >= 8
    assert "Budget 40k examples over 5 languages" in html


def test_kernel_runs_under_this_python(tmp_path: Path) -> None:
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("import sys; print(sys.executable)")]
    )
    executed = execute_module.run_notebook(notebook, tmp_path)
    printed = executed.cells[0].outputs[0]["text"].strip()
    assert Path(printed).resolve() == Path(sys.executable).resolve()


def test_failing_cell_is_named(tmp_path: Path) -> None:
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("x = 1", id="fine"),
            nbformat.v4.new_code_cell("1 / 0", id="broken"),
        ]
    )
    with pytest.raises(execute_module.NotebookError, match=r"cell 1 'broken' .*ZeroDivision"):
        execute_module.run_notebook(notebook, tmp_path)


def test_main_fails_in_one_line_without_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert execute_module.main([str(tmp_path)]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("notebooks/execute.py: error: plan-fit failed on")


def test_parameters_cell_is_replaced() -> None:
    template = nbformat.read(execute_module.NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in template.cells)  # kept with outputs cleared
    injected = execute_module.parameterise(template, "runs/other")
    sources = [cell.source for cell in injected.cells]
    assert any(s.startswith("SWEEP_DIR = 'runs/other'") for s in sources)
    assert not any("runs/other" in cell.source for cell in template.cells)


def test_plan_is_resolved_from_its_mixture(sweep: Path) -> None:
    main = primary_group(load_groups(sweep))
    report = load_plan(sweep, main.laws)
    mixture = json.loads((sweep / "allocate" / "mixture.json").read_text())
    recorded = tuple(entry["examples"] for entry in mixture["languages"].values())
    assert report.planner.allocation.examples == recorded
    assert list(by_objective(load_groups(sweep))) == ["sft", "dft"]
    half = what_if(report, budget="20k", weights={"hi": 3.0})
    assert sum(half.planner.allocation.examples) == 20_000
    assert half.problem.constraints.weights[report.problem.languages.index("hi")] == 3.0
    with pytest.raises(ConfigError, match="Unknown language 'xx'"):
        what_if(report, weights={"xx": 1.0})


def test_missing_mixture_names_the_command(tmp_path: Path, sweep: Path) -> None:
    main = primary_group(load_groups(sweep))
    with pytest.raises(DataError, match="plan-allocate"):
        load_plan(tmp_path, main.laws)


def test_notebook_runs_on_the_smoke_sweep_and_ends_with_a_summary(
    smoke_sweep: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The main command's last step on real sweep outputs: fit, plan, notebook, summary."""
    assert execute_module.main([str(smoke_sweep), "--summary"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"=== Summary of {smoke_sweep} ===")
    for language in ("el", "hi"):
        assert f"\n{language} " in printed.split("The plan:")[0]  # a law per language
    assert "planner gain [90%]" in printed and "uniform" in printed
    for path in ("results.csv", "fits", "allocate", "analysis.ipynb", "analysis.html"):
        assert str(smoke_sweep / path) in printed
    executed = nbformat.read(smoke_sweep / "analysis.ipynb", as_version=4)
    cells = {cell.get("id"): cell for cell in executed.cells}
    assert _images(cells["fits-plot"])[0].startswith(PNG_MAGIC)
