"""The integration tier's no-full-ID sweep (tests/integration/fixtures.py) finds what it must
and nothing else: a test that fails on a float in a log line proves nothing about IDs."""

from tests.integration.fixtures import full_ids


def test_a_full_id_is_found_wherever_it_stands():
    for text, found in (("id 110101199003074514 ok", "110101********4514"),
                        ("110101199003074514", "110101********4514"),
                        ("key=11010119900307451X,", "110101********451X"),
                        ("name.110101199003074514", "110101********4514")):
        assert full_ids(text) == [found], text


def test_masked_ids_longer_numbers_and_fractions_are_not_ids():
    assert full_ids("id 110101********4514") == []
    assert full_ids("offset 1101011990030745141") == []  # 19 digits
    assert full_ids("runtime=0.012517119001131505 sleeptime=1.5638076639952487") == []


def test_digits_inside_a_hash_are_not_an_id_unless_they_pass_its_check():
    """A review case id (24 hex) once held 18 digits in a row and failed a test (issue #20)."""
    assert full_ids("review case e7dfc151664123456789016496d OTHER") == []
    assert full_ids("e7dfc110101199003074514d") == ["110101********4514"]  # a valid one, even glued
