import hmac

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from streams.domain import ids
from streams.domain.enums import RejectionReason
from streams.domain.ids import check_char, mask_id, normalize_id, person_key, scrub

# The worked example of GB 11643-1999.
GB_EXAMPLE = "11010519491231002X"


def test_gb11643_worked_example_checks():
    assert check_char(GB_EXAMPLE[:17]) == "X"
    assert normalize_id(GB_EXAMPLE) == (GB_EXAMPLE, None)


def test_lower_case_x_and_spaces_are_normalised():
    assert normalize_id(" 11010519491231002x ")[0] == GB_EXAMPLE


def test_fifteen_digits_upgrade_to_eighteen():
    id15 = "110105491231002"
    id18, problem = normalize_id(id15)
    assert problem is None
    assert id18 == GB_EXAMPLE


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("110105194912310021", RejectionReason.ID_CHECKSUM),
        ("11010519491331002X", RejectionReason.ID_FORMAT),  # month 13
        ("99010519491231002X", RejectionReason.ID_FORMAT),  # no such province
        ("1101051949123100", RejectionReason.ID_FORMAT),  # 16 characters
        ("11010519491231X02X", RejectionReason.ID_FORMAT),
        ("", RejectionReason.MISSING_FIELD),
        # digits other than ASCII's: the same number would be another person's key, or crash
        ("11010519\uff19912310022", RejectionReason.ID_FORMAT),  # a full-width 9, its check character right
        ("11\u00b9000200001010000", RejectionReason.ID_FORMAT),  # a superscript 1 (int() fails on it)
        ("11010549123100\u0662", RejectionReason.ID_FORMAT),  # 15 digits, an Arabic-Indic 2 last
    ],
)
def test_bad_numbers_get_a_typed_reason(raw, reason):
    id18, problem = normalize_id(raw)
    assert id18 is None
    assert problem is not None and problem.reason is reason


def test_mask_keeps_first_six_and_last_four():
    assert mask_id(GB_EXAMPLE) == "110105********002X"
    assert mask_id("123") == "***"


def test_person_key_is_hmac_hex_and_depends_on_secret():
    k1 = person_key(GB_EXAMPLE, b"s1")
    assert len(k1) == 64 and k1 == k1.lower() and GB_EXAMPLE not in k1
    assert k1 == person_key(GB_EXAMPLE, b"s1") != person_key(GB_EXAMPLE, b"s2")


def test_scrub_masks_id_like_runs_in_free_text():
    text = f"failed on {GB_EXAMPLE} and 110105491231002, kept 2025"
    out = scrub(text)
    assert GB_EXAMPLE not in out and "110105491231002" not in out
    assert "110105********002X" in out and "kept 2025" in out


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=200), st.text(alphabet="0123456789X", min_size=0, max_size=24))
@example(b"k" * 63, GB_EXAMPLE)
@example(b"k" * 64, GB_EXAMPLE)
@example(b"k" * 65, GB_EXAMPLE)
@example(b"k" * 97, GB_EXAMPLE)
@example(b"k" * 200, GB_EXAMPLE)
def test_person_key_is_hmac_sha256_of_the_id_number(secret, id18):
    """The pads hashed once (``person_key``) against the standard library's HMAC, on secrets
    shorter and longer than SHA-256's block (64 bytes: a longer one is hashed first)."""
    assert person_key(id18, secret) == hmac.digest(secret, id18.encode("ascii"), "sha256").hex()
    assert person_key(id18, secret) == person_key(id18, secret)  # (the pads kept are not changed by a call)


def test_person_keys_of_several_secrets_are_each_their_own():
    keys = [person_key("410102199001011234", bytes([i]) * 32) for i in range(20)]  # more than the pads kept
    assert len(set(keys)) == 20 and len(ids._PADS) <= 8  # (the pads kept are bounded)
    assert keys == [hmac.digest(bytes([i]) * 32, b"410102199001011234", "sha256").hex() for i in range(20)]
