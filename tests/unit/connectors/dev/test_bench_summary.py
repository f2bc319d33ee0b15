"""The benchmark's profile summary of py-spy's collapsed stacks (no broker)."""

from connectors.dev.bench import summarize_collapsed


def test_self_and_inclusive_shares_of_collapsed_stacks():
    text = ("main (cli.py:1);handle (intake.py:10);decode (codec.py:90) 6\n"
            "main (cli.py:1);handle (intake.py:12);validate (validation.py:49) 3\n"
            "main (cli.py:1);poll (selectors.py:468) 1\n")
    out = summarize_collapsed(text)
    assert out.startswith("10 samples")
    own, inclusive = out.split("inclusive:")
    assert "60.0%  decode (codec.py)" in own and "30.0%  validate (validation.py)" in own
    assert "90.0%  handle (intake.py)" in inclusive  # two lines of one function count once per stack
    assert "100.0%  main (cli.py)" in inclusive


def test_no_samples_says_so():
    assert summarize_collapsed("") == "no samples\n"
