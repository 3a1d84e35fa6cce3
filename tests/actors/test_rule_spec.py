"""The model owner's rule setting: a name, or a name with parameters; mistakes are named."""

import pytest

from protocol.errors import ConfigError
from protocol.robust import FLTrust, MultiKrum, TrimmedMean, rule_from_spec


def test_names_and_parameters() -> None:
    assert isinstance(rule_from_spec("fltrust:norm=median"), FLTrust)
    assert rule_from_spec("fltrust:norm=median").norm == "median"
    assert rule_from_spec("multi_krum:f=3").f == 3
    assert rule_from_spec("trimmed_mean:beta=0.1").beta == pytest.approx(0.1)
    assert isinstance(rule_from_spec("trimmed_mean"), TrimmedMean)
    assert isinstance(rule_from_spec(" multi_krum : f=1 "), MultiKrum)


@pytest.mark.parametrize(
    "spec", ["medain", "fltrust:norm", "multi_krum:k=3", "fltrust:norm=sideways"]
)
def test_mistakes_are_named(spec: str) -> None:
    with pytest.raises(ConfigError):
        rule_from_spec(spec)
