from labkit import exercises as ex
from labkit import capstone, weights
from labkit.backdoor.protocols import detection_threshold


def test_10_1_wrong_device_exception():
    assert ex.check("10.1", weights.NotARecipientError)
    assert ex.check("10.1", "NotARecipientError")
    too_general = ex.check("10.1", weights.IntegrityError)
    assert not too_general and "too general" in str(too_general)
    assert not ex.check("10.1", ValueError)


def test_10_2_threshold_shares_alpha_between_users():
    k = detection_threshold(16, alpha=1e-6 / 5)
    assert ex.check("10.2", k)
    one_user = ex.check("10.2", detection_threshold(16, alpha=1e-6))
    if detection_threshold(16, alpha=1e-6) != k:
        assert not one_user and "five users" in str(one_user)
    assert not ex.check("10.2", k - 1) and not ex.check("10.2", k + 1)


def test_10_3_properties():
    assert ex.check("10.3", dict(capstone.THREATS))
    swapped = dict(capstone.THREATS, tampering="confidentiality", disclosure="integrity")
    feedback = ex.check("10.3", swapped)
    assert not feedback and "tampering" in str(feedback) and "disclosure" in str(feedback)
    assert not ex.check("10.3", "not a dict")


def test_10_4_fewest_queries():
    n = next(m for m in range(1, 30) if 0.1**m <= 1e-6 / 5)
    assert ex.check("10.4", n) and not ex.check("10.4", n - 1) and not ex.check("10.4", n + 1)
