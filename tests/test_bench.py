"""The benchmark's bookkeeping: medians over repeats, the table's rows and Markdown."""

from __future__ import annotations

from bench.__main__ import aggregate, markdown, rows_for


def _run(ms, bare, age=None):
    result = {
        "ms_per_frame": ms,
        "bare_backbone_ms": bare,
        "ratio_to_bare": ms / bare,
        "fps": 1000 / ms,
        "frames": 10,
        "cpu_cores": 1.0,
        "peak_rss_mb": 800,
        "backend": "litert",
    }
    if age is not None:
        result["paced"] = {"age_p50_ms": age, "age_p95_ms": 2 * age, "dropped": 1, "sampled": 9}
    return result


def test_medians_over_repeats_including_nested_figures():
    merged = aggregate([_run(30, 20, 40), _run(10, 10, 20), _run(20, 10, 100)])
    assert merged["ms_per_frame"] == 20 and merged["bare_backbone_ms"] == 10
    assert merged["paced"]["age_p50_ms"] == 40 and merged["paced"]["age_p95_ms"] == 80
    assert merged["backend"] == "litert"


def test_rows_compare_with_the_example_and_show_missing_ages():
    results = {"example": {"a.avi": _run(200, 50)}, "pipeline/litert": {"a.avi": _run(25, 24, 30)}}
    rows = rows_for(results, {"clip a": "a.avi"})
    example, ours = rows
    assert example["speedup_vs_example"] == 1.0 and example["age_p95_ms"] is None
    assert ours["variant"] == "ours, litert" and ours["speedup_vs_example"] == 8.0
    meta = {"machine": {"cpu": "Test CPU", "cores": 2}, "backbone": "b", "repeats": 1,
            "command": "python -m bench", "checks": {}}  # fmt: skip
    text = markdown(rows, meta)
    table = [line for line in text.splitlines() if line.startswith("| clip a")]
    assert len(table) == 2 and "| — |" in table[0] and "| 8.0 |" in table[1]
    assert "Test CPU" in text
