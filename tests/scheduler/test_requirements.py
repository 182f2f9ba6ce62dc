"""The P/D balance rule and requirement validation."""

import math

import pytest

from scheduler import RoleRequirements, ServiceRequirements
from tests.scheduler.trees import service


@pytest.mark.parametrize(
    ("pd_ratio", "prefill", "decode", "balanced"),
    [
        (1.0, 0, 0, True),  # an empty group is dissolved, not unbalanced
        (1.0, 1, 0, False),  # a group needs both roles to serve
        (1.0, 2, 1, True),
        (1.0, 3, 1, False),
        (0.5, 1, 2, True),
        (0.5, 1, 4, True),
        (0.5, 1, 5, False),
        (9 / 7, 9, 7, True),
        (9 / 7, 11, 7, False),
    ],
)
def test_balance_with_default_tolerance(pd_ratio, prefill, decode, balanced):
    assert service(pd_ratio=pd_ratio).is_balanced(prefill, decode) is balanced


@pytest.mark.parametrize("pd_ratio", [0.28, 0.5, 1.0, 9 / 7, 2.0])
def test_the_policys_ceil_split_is_always_balanced(pd_ratio):
    needs = service(pd_ratio=pd_ratio)
    assert all(needs.is_balanced(math.ceil(d * pd_ratio), d) for d in range(1, 200))


@pytest.mark.parametrize(
    "kwargs",
    [{"affinity": "rack"}, {"pd_ratio": 0.0}, {"ratio_tolerance": 0.4}],
)
def test_bad_service_requirements_are_refused(kwargs):
    with pytest.raises(ValueError):
        service(**kwargs)


def test_bad_role_requirements_are_refused():
    with pytest.raises(ValueError, match="repeat"):
        RoleRequirements("H20", ("H20",))
    with pytest.raises(ValueError, match="gpus_per_instance"):
        RoleRequirements("H20", gpus_per_instance=0)


def test_role_lookup():
    needs = ServiceRequirements(RoleRequirements("L20"), RoleRequirements("H20", ("L20",)))
    assert needs.role("prefill").gpu_types == ("L20",)
    assert needs.role("decode").gpu_types == ("H20", "L20")
    with pytest.raises(ValueError, match="role"):
        needs.role("colocated")
