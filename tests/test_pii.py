"""The PII rules: key removal, typed value masking, recursion, no mutation, the processor."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import numpy as np
import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_core import PIIRedactor, redact_pii, sanitize_pii
from mlops_core.pii import iban_valid, luhn_valid, mask_text, normalize_key


def test_issue_example() -> None:
    assert sanitize_pii({"age": 35, "email": "test@example.com"}) == {"age": 35}


@pytest.mark.parametrize(
    ("key", "normalized"),
    [
        ("emailAddress", "email_address"),
        ("user_email", "user_email"),
        ("PHONE_NUMBER", "phone_number"),
        ("IPAddress", "ip_address"),
        ("e-mail", "e_mail"),
        ("Date Of Birth", "date_of_birth"),
        ("ipv6Addr", "ipv6_addr"),
    ],
)
def test_normalize_key(key: str, normalized: str) -> None:
    assert normalize_key(key) == normalized


@pytest.mark.parametrize(
    "key",
    [
        "email", "user_email", "emailAddress", "EMAIL", "e-mail", "contactEmail",
        "phone", "PHONE_NUMBER", "mobilePhone", "telephone",
        "name", "Name", "customer_name", "userName", "username", "firstName", "last_name",
        "FullName", "surname",
        "address", "billingAddress", "street", "home_address",
        "ssn", "SSN", "social_security_number", "national_id", "passportNumber", "tax_id",
        "credit_card", "creditCardNumber", "card_number", "cvv",
        "iban", "IBAN", "bank_account",
        "ip", "client_ip", "ip_address", "IPAddress", "remote_addr", "ipv6",
        "dob", "date_of_birth", "dateOfBirth", "birthdate",
        "password", "PASSWORD", "api_token", "access_token", "client_secret", "apiKey",
        "Authorization", "cookie",
    ],
)  # fmt: skip
def test_pii_keys_are_removed(key: str) -> None:
    assert sanitize_pii({key: "x", "age": 35}) == {"age": 35}


@pytest.mark.parametrize(
    "key",
    ["age", "plan_name", "feature_name", "model_name", "ip_version", "max_tokens",
     "address_verified", "card_type", "phoneme_count", "tenure_months", "sin_hour",
     "signup_channel", "country", "income"],
)  # fmt: skip
def test_feature_keys_are_kept(key: str) -> None:
    assert sanitize_pii({key: 7}) == {key: 7}


def test_key_lists_are_configurable() -> None:
    data = {"zipCode": "10115", "email_verified": True, "email": "a@example.com", "age": 3}
    assert sanitize_pii(data, extra_keys=["zip_code"]) == {"age": 3}
    allowed = sanitize_pii(data, allow_keys=["emailVerified"])
    assert allowed == {"zipCode": "10115", "email_verified": True, "age": 3}
    only_zip = sanitize_pii(data, keys=["zip code"], exact_keys=[])
    assert only_zip == {"email_verified": True, "email": "[REDACTED:EMAIL]", "age": 3}
    no_mask = sanitize_pii({"note": "a@example.com"}, mask_values=False)
    assert no_mask == {"note": "a@example.com"}
    with pytest.raises(TypeError, match="keys"):
        PIIRedactor("email")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to bob@example.com today", "write to [REDACTED:EMAIL] today"),
        ("call +44 20 7946 0958", "call [REDACTED:PHONE]"),
        ("call (555) 123-4567 now", "call [REDACTED:PHONE] now"),
        ("card 4111 1111 1111 1111.", "card [REDACTED:CARD]."),
        ("pay DE89370400440532013000 now", "pay [REDACTED:IBAN] now"),
        ("ssn 078-05-1120", "ssn [REDACTED:SSN]"),
        ("from 203.0.113.9:443", "from [REDACTED:IP]:443"),
        ("from [2001:db8::7]:443", "from [[REDACTED:IP]]:443"),
    ],
)
def test_values_are_masked_with_typed_markers(text: str, expected: str) -> None:
    assert sanitize_pii({"note": text}) == {"note": expected}


def test_checksums_gate_cards_and_ibans() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("GB29 NWBK 6016 1331 9268 19") and not iban_valid("GB28NWBK60161331926819")
    assert mask_text("4111111111111112") == "4111111111111112"
    assert mask_text("DE88370400440532013000") == "DE88370400440532013000"


def test_numbers_are_features_not_pii() -> None:
    data = {
        "income": 4111111111111111.0,
        "account_age": 4111111111111111,
        "flag": True,
        "ratio": 0.83,
        "none": None,
        "as_text": "4111111111111111",
    }
    out = sanitize_pii(data)
    assert out["income"] == 4111111111111111.0 and type(out["income"]) is float
    assert out["account_age"] == 4111111111111111 and out["flag"] is True
    assert out["ratio"] == 0.83 and out["none"] is None
    assert out["as_text"] == "[REDACTED:CARD]"


def test_recurses_into_dicts_lists_tuples_without_mutation() -> None:
    data = {
        "features": {"age": 35, "contact": {"email": "a@b.example", "phone": "555-123-4567"}},
        "history": [{"note": "mail x@example.com"}, ("10.0.0.1", 3, ["ssn 123-45-6789"])],
        "user_email": "gone@example.com",
    }
    before = copy.deepcopy(data)
    out = sanitize_pii(data)
    assert data == before
    assert out == {
        "features": {"age": 35, "contact": {}},
        "history": [
            {"note": "mail [REDACTED:EMAIL]"},
            ("[REDACTED:IP]", 3, ["ssn [REDACTED:SSN]"]),
        ],
    }
    assert isinstance(out["history"][1], tuple)
    out["features"]["age"] = 0
    out["history"][0]["note"] = "changed"
    assert data == before  # no shared containers


def test_keys_holding_pii_are_masked_too() -> None:
    assert sanitize_pii({"bob@example.com": 1, 7: "x"}) == {"[REDACTED:EMAIL]": 1, 7: "x"}


def test_output_is_json_native() -> None:
    class Customer:
        def __repr__(self) -> str:
            return "Customer(email='c@example.com')"

    data = {
        "n": np.int64(3),
        "x": np.float32(0.5),
        "arr": np.array([1, 2]),
        "tags": {"a"},
        "amount": Decimal("1.5"),
        "obj": Customer(),
        "raw": b"from 10.0.0.1",
    }
    out = sanitize_pii(data)
    assert json.loads(json.dumps(out)) == {
        "n": 3,
        "x": 0.5,
        "arr": [1, 2],
        "tags": ["a"],
        "amount": 1.5,
        "obj": "Customer(email='[REDACTED:EMAIL]')",
        "raw": "from [REDACTED:IP]",
    }


def test_long_inputs_stay_linear() -> None:
    """Inputs shaped to provoke regex backtracking still finish and mask every item."""
    text = "x@example.com " * 2000 + "1-" * 5000 + "1:" * 5000 + "a" * 20000 + "@"
    out = mask_text(text)
    assert out.count("[REDACTED:EMAIL]") == 2000
    assert mask_text("9" * 50000) == "9" * 50000


def test_processor_in_a_users_structlog_chain() -> None:
    log = structlog.wrap_logger(
        structlog.ReturnLogger(),
        processors=[redact_pii, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.BoundLogger,
    )
    line = log.info(
        "signup from 198.51.100.7",
        user_email="a@example.com",
        request_id="req-10.0.0.1",
        payload={"note": "call 555-123-4567", "age": 40},
    )
    assert json.loads(line) == {
        "event": "signup from [REDACTED:IP]",
        "request_id": "req-10.0.0.1",  # a skip key: left as the caller wrote it
        "payload": {"note": "call [REDACTED:PHONE]", "age": 40},
    }


def test_processor_does_not_mutate_event_dict() -> None:
    event = {"event": "x", "email": "a@example.com", "deep": {"ip": "10.0.0.1"}}
    before = copy.deepcopy(event)
    assert redact_pii(None, "info", event) == {"event": "x", "deep": {}}
    assert event == before


_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.sampled_from(["a@example.com", "4111111111111111", "10.0.0.1", "2001:db8::1"]),
)
_json = st.recursive(
    _json_leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=12), children, max_size=4),
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(_json)
def test_sanitize_is_pure_idempotent_and_serialisable(data: object) -> None:
    before = copy.deepcopy(data)
    once = sanitize_pii(data)
    assert data == before
    assert sanitize_pii(once) == once
    json.dumps(once)
