"""`zhucan policy check|explain` as a user runs them."""

import shutil

from connectors.ops.cli import main
from streams.policies import SHIPPED_POLICY_DIR


def test_policy_check_passes_on_shipped_files(capsys):
    assert main(["policy", "check"]) == 0
    out = capsys.readouterr().out
    for region in ("410000-2025", "370000-2025", "371000-2025", "500000-2020", "510400-2022"):
        assert f"ok  {region}@" in out
    assert "example value (示例值, not from the notice): premiums.1" in out
    assert "example value (示例值, not from the notice): on_the_spot_until" in out


def test_policy_check_fails_clearly_on_a_broken_file(tmp_path, capsys):
    for f in SHIPPED_POLICY_DIR.glob("*.yaml"):
        shutil.copy(f, tmp_path / f.name)
    broken = tmp_path / "500000-2020.yaml"
    broken.write_text(broken.read_text(encoding="utf-8").replace("funding_source: OTHER", "funding_source: NOBODY", 1),
                      encoding="utf-8")
    assert main(["policy", "check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "500000-2020.yaml: subsidies.ENTITLED_VETERAN.funding_source: Input should be" in err


def test_policy_explain_prints_decision_and_basis(capsys):
    code = main(["policy", "explain", "--region", "510402", "--year", "2022", "--category", "重度残疾",
                 "--category", "MINIMUM_LIVING", "--student"])
    assert code == 0
    out = capsys.readouterr().out
    assert "SEVERE_DISABILITY" in out and "level      1" in out and "payable 0.00元" in out
    assert "攀医保〔2021〕58号 四" in out


def test_policy_explain_rejects_unknown_category(capsys):
    assert main(["policy", "explain", "--region", "410102", "--year", "2025", "--category", "NOPE"]) == 1
    assert "unknown category 'NOPE'" in capsys.readouterr().err
