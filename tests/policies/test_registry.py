"""Policies by name: every policy the issue names, ablations on request, unknown names refused."""

import pytest

from policies.registry import ABLATIONS, POLICIES, select


def test_every_named_policy_is_registered_heteroscale_first():
    assert list(POLICIES) == [
        "heteroscale",
        "oracle",
        "static_peak",
        "static_hindsight",
        "hpa_gpu_util",
        "independent_tps",
        "latency_steps",
        "saturation",
        "forecast_planner",
        "periodic",
    ]


def test_selection_keeps_registry_order_and_adds_ablations_on_request():
    assert list(select(["periodic", "heteroscale"])) == ["heteroscale", "periodic"]
    assert list(select(None, ablations=True)) == [*POLICIES, *ABLATIONS]
    named = select(["heteroscale_without_soft_scale_in"])
    assert list(named) == ["heteroscale_without_soft_scale_in"]


def test_an_unknown_name_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown policies \['hpa'\]; known: heteroscale"):
        select(["hpa"])
