"""The load governor: rates halve while results age past the bound, and come back once they are quick."""

from __future__ import annotations

import pytest

from toonvision_live.governor import LoadGovernor


def test_slow_frames_lower_the_rates_step_by_step_and_say_so():
    gov = LoadGovernor(slow_ms=30, fast_ms=15, step_s=0.5, hold_s=2.0)
    assert gov.rate == 1.0 and gov.message == ""
    t = 0.0
    while gov.level == 0 and t < 5:
        gov.observe(80.0, t)
        t += 1 / 30
    assert gov.rate == 0.5 and gov.search_rate == 0.5 and "CPU busy" in gov.message and "50%" in gov.message
    for _ in range(10):  # another step needs step_s more
        gov.observe(80.0, t)
        t += 0.01
    assert gov.rate == 0.5
    for _ in range(30):
        gov.observe(80.0, t)
        t += 1 / 30
    assert gov.rate == 0.25 and gov.level == 2
    assert gov.search_rate == 0.5  # searches are halved once at most: Cogs walking in must still be found
    for _ in range(60):
        gov.observe(80.0, t)
        t += 1 / 30
    assert gov.level == 2  # the lowest rate: frames keep flowing, nothing else to shed


def test_quick_frames_bring_the_full_rate_back_after_a_hold():
    gov = LoadGovernor(slow_ms=30, fast_ms=15, step_s=0.5, hold_s=2.0, alpha=1.0)
    gov.observe(100.0, 0.0)
    assert gov.level == 1
    t = 0.1
    while gov.level and t < 10:
        gov.observe(5.0, t)
        t += 1 / 30
    assert gov.level == 0 and gov.message == "" and t == pytest.approx(2.1, abs=0.1)
    assert gov.changes == 2


def test_a_disabled_governor_keeps_the_full_rate():
    gov = LoadGovernor(enabled=False)
    for k in range(100):
        gov.observe(500.0, k * 0.1)
    assert gov.rate == 1.0 and gov.age_ms == pytest.approx(500.0)
    with pytest.raises(ValueError):
        LoadGovernor(slow_ms=10, fast_ms=20)
