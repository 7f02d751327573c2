"""The reader's figures per effective line height (final height x rescale factor) and per degradation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from toonvision_live.cli import main
from training.reader.effective import degradation_groups, effective_em, effective_report


def test_effective_height_is_the_final_height_times_the_rescale_factor() -> None:
    em = np.array([6.0, 6.0, 10.0, 10.0, 7.0])
    deg = [{"rescale": 0.5}, {}, {"rescale": 0.7, "jpeg": 30.0}, {"blur": 0.9, "light": 1.0}, {"light": 1.0}]
    assert effective_em(em, deg) == pytest.approx([3.0, 6.0, 7.0, 10.0, 7.0])
    groups = degradation_groups(deg)
    assert groups["none"].tolist() == [False, True, False, False, False]
    assert groups["light_only"].tolist() == [False, False, False, False, True]
    assert groups["rescaled"].tolist() == [True, False, True, False, False]
    assert groups["blur_gt_0.6"].tolist() == [False, False, False, True, False]
    assert groups["two_or_more_of_them"].tolist() == [False, False, True, False, False]

    ok = {"exact": np.array([False, True, False, True, True]), "level": np.array([False, True, True, True, True])}
    whole = np.array([True, True, True, True, False])  # the last tag is covered: never counted
    rep = effective_report(ok, em, deg, whole)
    eff = rep["by_effective_line_height"]
    assert eff["3_4"] == {"n": 1, "exact": 0.0, "level": 0.0}
    assert eff["6_8"] == {"n": 2, "exact": 0.5, "level": 1.0}  # 6 px unscaled (read) and 10 px at 0.7x (missed)
    assert eff["8_12"]["n"] == 1 and sum(r["n"] for r in eff.values()) == 4
    fve = rep["final_versus_effective"]
    assert fve["ge_8"]["final"] == {"n": 2, "exact": 0.5, "level": 1.0}
    assert fve["ge_8"]["effective"] == {"n": 1, "exact": 1.0, "level": 1.0}
    assert fve["5_8"]["final"]["n"] == 2 and fve["5_8"]["effective"]["n"] == 2
    assert rep["final_5_8_by_effective"]["lt_4"]["n"] == 1 and rep["final_5_8_by_effective"]["5_8"]["n"] == 1
    assert rep["final_ge_8_by_effective"] == {"lt_8": {"n": 1, "exact": 0.0, "level": 1.0},
                                              "ge_8": {"n": 1, "exact": 1.0, "level": 1.0}}
    assert rep["by_degradation"]["final_5_8"]["rescaled"]["n"] == 1


@pytest.mark.slow
def test_evaluate_reader_reports_final_and_effective_heights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """End to end on a 48-tag test shard: the headline per final height, then per effective height from
    the renderer's record of the re-rendered tags; the same whole tags counted both ways."""
    import training.reader.train as train

    monkeypatch.setattr(train, "SHARD_SIZE", 48)
    out = tmp_path / "eval.json"
    assert main(["evaluate-reader", "--data", str(tmp_path / "data"), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.index("per final line height (the headline)") < text.index("per effective line height")
    m = json.loads(out.read_text())
    eff = m["effective"]
    assert sum(r["n"] for r in eff["by_effective_line_height"].values()) == m["n"]
    for key in ("ge_8", "5_8", "ge_6"):
        assert eff["final_versus_effective"][key]["final"]["n"] == m[f"em_{key}"]["n"]
        assert eff["final_versus_effective"][key]["final"]["exact"] == pytest.approx(m[f"em_{key}"]["exact"], abs=1e-4)
    # rescaling only lowers the height: no more tags at >= 8 px effective than final
    assert eff["final_versus_effective"]["ge_8"]["effective"]["n"] <= m["em_ge_8"]["n"]


def test_evaluate_reader_cpu_only_prints_the_inputs_apart_from_the_network(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--cpu-only`` needs no shards and prints the network, the preparing of the READS inputs and their sum."""
    assert main(["evaluate-reader", "--data", str(tmp_path / "data"), "--cpu-only"]) == 0
    text = capsys.readouterr().out
    assert "CPU per read (batch 16, one thread)" in text and "preparing a tag's 3 inputs" in text
    per_tag = float(text.split("per tag (3 reads): ")[1].split(" ms")[0])
    prep = float(text.split("preparing a tag's 3 inputs: ")[1].split(" ms")[0])
    both = float(text.split("(network + preparing: ")[1].split(" ms")[0])
    assert prep > 0 and both == pytest.approx(per_tag + prep, abs=2e-3)
    assert not (tmp_path / "data").exists()
