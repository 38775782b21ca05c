"""PII redaction: one set of rules, usable as a structlog processor or on a plain dict.

Two rules, applied recursively to dicts, lists and tuples:

1. **Keys that name personal data are removed**, with their whole value.  Key names are
   normalised first (``emailAddress``, ``user_email``, ``PHONE_NUMBER`` and ``e-mail`` all
   become lower-case words), then compared with two configurable lists:

   * ``keys``: a name matches anywhere in the key as a run of whole words
     (``email`` removes ``user_email`` and ``email_verified``; ``token`` removes
     ``access_token`` but not ``max_tokens``);
   * ``exact_keys``: ambiguous words (``name``, ``address``, ``ip``, ...) that match only the
     whole key, optionally after owner words such as ``user_`` or ``customer_``
     (``customer_name`` is removed, ``plan_name`` and ``ip_version`` are kept).

2. **Values of the other keys are masked in place** with a typed marker, for example
   ``"mail me at bob@example.com"`` -> ``"mail me at [REDACTED:EMAIL]"``: e-mail addresses,
   phone numbers, payment card numbers (Luhn check), IBANs (mod-97 check), US SSNs, IPv4 and
   IPv6 addresses (validated with :mod:`ipaddress`).  Each format is recognised in its
   variants: e-mail addresses and IBANs in any case (a lower- or mixed-case IBAN must also
   have its country's registered length, so lower-case ids that happen to pass mod-97 are
   left alone), and grouped values (IBANs, cards, phone numbers) with spaces, no-break
   spaces, dashes or dots between the groups, or none (``tests/test_pii_variants.py``
   generates them).

Numbers (``int``, ``float``, ``bool``) are never masked: an ``income`` of
``4111111111111111.0`` is a feature, not a card.  The caller's objects are never mutated.
Output is JSON-native: objects that JSON cannot hold (numpy scalars and arrays, sets,
datetimes, arbitrary objects) are converted first (``.item()``, ``.tolist()``, ``list``,
``isoformat()``, ``str``) and the resulting strings are masked, so a ``repr`` cannot leak.

Speed: the decision for a key is cached; a string value only reaches the regular expressions
if it can hold PII at all (``@`` for e-mail, ``:`` for IPv6, a digit for everything else).
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import numbers
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, SupportsFloat

__all__ = [
    "DEFAULT_EXACT_PII_KEYS",
    "DEFAULT_OWNER_WORDS",
    "DEFAULT_PII_KEYS",
    "DEFAULT_SKIP_KEYS",
    "IBAN_LENGTHS",
    "PIIRedactor",
    "iban_valid",
    "luhn_valid",
    "mask_text",
    "normalize_key",
    "redact_pii",
    "sanitize_pii",
]

# --- key rules ----------------------------------------------------------------------------------

#: Names matched anywhere in a normalised key as a run of whole words.
DEFAULT_PII_KEYS: frozenset[str] = frozenset(
    {
        # e-mail and phone
        "email", "emails", "e_mail", "emailaddress", "mail_address",
        "phone", "phones", "phone_number", "phonenumber", "telephone", "mobile_number",
        "mobile_phone", "cell_phone", "cellphone", "fax", "msisdn",
        # names
        "first_name", "firstname", "last_name", "lastname", "full_name", "fullname",
        "given_name", "family_name", "middle_name", "maiden_name", "surname", "username",
        "user_name", "display_name", "birth_name",
        # postal address
        "street", "street_address", "address_line", "postal_address", "mailing_address",
        "home_address", "billing_address", "shipping_address", "residential_address",
        # national ids
        "ssn", "ssns", "social_security", "national_id", "national_identifier",
        "national_insurance", "passport", "passport_number", "tax_id", "taxpayer_id",
        "driver_license", "drivers_license", "driver_licence", "driving_licence",
        "driving_license", "license_number", "licence_number", "personal_id",
        # payment
        "credit_card", "creditcard", "card_number", "cardnumber", "card_no", "card_num",
        "cc_number", "ccnum", "cvv", "cvv2", "cvc", "iban", "ibans", "bank_account",
        "account_number", "routing_number",
        # network
        "ip_address", "ip_addresses", "ipaddress", "ip_addr", "ipv4", "ipv6", "remote_addr",
        "x_forwarded_for", "forwarded_for",
        # birth
        "date_of_birth", "dateofbirth", "birth_date", "birthdate", "birthday", "dob",
        # credentials
        "password", "passwords", "passwd", "pwd", "passphrase", "secret", "secrets", "token",
        "api_key", "apikey", "access_key", "private_key", "auth", "authorization",
        "credential", "credentials", "cookie", "cookies", "session_id",
    }
)  # fmt: skip

#: Ambiguous words that name personal data only as the whole key (after owner words).
DEFAULT_EXACT_PII_KEYS: frozenset[str] = frozenset(
    {"name", "names", "address", "addresses", "addr", "ip", "card", "mail", "tel", "mobile",
     "sin", "nin", "tin", "pin", "location", "geo", "gps", "lat_lon", "latlon"}
)  # fmt: skip

#: Leading words that say whose data a key holds; stripped before the exact comparison.
DEFAULT_OWNER_WORDS: frozenset[str] = frozenset(
    {"user", "customer", "client", "person", "contact", "account", "billing", "shipping",
     "home", "work", "primary", "secondary", "holder", "cardholder", "patient", "employee",
     "sender", "recipient", "owner", "member", "applicant", "buyer", "payer", "payee", "my",
     "remote", "src", "source", "dst", "dest", "origin", "real", "public", "private", "last",
     "current", "previous"}
)  # fmt: skip

#: Top-level event keys that the processor neither removes nor masks: structlog's own fields
#: and the fixed fields of the prediction log record.
DEFAULT_SKIP_KEYS: frozenset[str] = frozenset(
    {"timestamp", "level", "logger", "logger_name", "service", "model_version", "request_id",
     "latency_ms"}
)  # fmt: skip

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_ALNUM = re.compile(r"[^0-9a-zA-Z]+")


def normalize_key(key: str) -> str:
    """``emailAddress``, ``Email-Address``, ``EMAIL_ADDRESS`` -> ``email_address``."""
    words = _NON_ALNUM.split(_CAMEL.sub("_", key))
    return "_".join(w.lower() for w in words if w)


# --- value rules --------------------------------------------------------------------------------

EMAIL = "[REDACTED:EMAIL]"
PHONE = "[REDACTED:PHONE]"
CARD = "[REDACTED:CARD]"
IBAN = "[REDACTED:IBAN]"
SSN = "[REDACTED:SSN]"
IP = "[REDACTED:IP]"

_EMAIL_RE = re.compile(
    r"(?<![\w.%+-])\w[\w.%+'-]*@[^\W_][\w-]*(?:\.[\w-]+)*\.[^\W\d_]{2,63}(?![\w-])"
)
_IPV6_RE = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}"
    r"(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?(?:%[\w.]+)?(?![\w:])"
)
# Values are grouped with spaces, no-break spaces (what word processors and HTML put between
# groups), dashes or dots; every grouped format below accepts each of them.
_SP = " \u00a0\u202f"
_GROUP = f"[{_SP}.-]"
_IBAN_SEPARATORS = re.compile(_GROUP)
# Either case: an IBAN copied from a form or typed by hand is often lower or mixed case.
_IBAN_RE = re.compile(rf"(?<!\w)[A-Za-z]{{2}}\d{{2}}(?:{_GROUP}?[A-Za-z0-9]){{11,30}}(?!\w)")
# 13-19 digits, first digit 2-6 (Mastercard 2/5, Amex/Diners/JCB 3, Visa 4, Discover/UnionPay
# 6), contiguous or in the printed groups 4-4-4-4(-3), 4-6-5 and 4-6-4 (one separator kind).
_CARD_RE = re.compile(
    r"(?<![\d.+])(?:[2-6]\d{12,18}"
    rf"|[2-6]\d{{3}}({_GROUP})\d{{4}}\1\d{{4}}\1\d{{4}}(?:\1\d{{3}})?"
    rf"|3\d{{3}}({_GROUP})\d{{6}}\2\d{{4,5}})(?!\d|\.\d)"
)
_SSN_RE = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")
_SSN_CONTEXT_RE = re.compile(
    r"(?i)\b(?:ssn|social security(?: number| no\.?)?)\s*(?:#|no\.?)?\s*[:=]?\s*"
    r"((?!000|666|9\d\d)\d{3}([ -]?)(?!00)\d{2}\2(?!0000)\d{4})(?!\d)"
)
_IPV4_RE = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)")
_PHONE_INTL_RE = re.compile(rf"(?<![\w+])\+\d[\d(){_SP}.-]{{6,20}}\d(?!\d)")
_PHONE_NANP_RE = re.compile(
    rf"(?<![\w.+-])(?:1{_GROUP})?(?:\(\d{{3}}\)[{_SP}]?|\d{{3}}{_GROUP})\d{{3}}{_GROUP}\d{{4}}"
    r"(?!\w|[.-]\d)"
)
# National numbers with a trunk 0 (or a 00 international prefix), not inside a run of
# digit groups ("DE89 3704 0044 0532 ..." is an IBAN-shaped string, not a phone).
_PHONE_TRUNK_RE = re.compile(
    rf"(?<![\w.+-])(?<!\d[{_SP}])(?:(?:0[1-9]\d{{0,3}}|00[1-9]\d{{0,2}})(?:{_GROUP}\d{{2,8}}){{1,4}}"
    r"|0[1-9]\d{8,9})(?!\w|[.-]\d)"
)
_NOT_DIGIT = re.compile(r"\D")
_HAS_DIGIT = re.compile(r"\d").search


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a string of digits (payment card numbers pass it)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i & 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


#: IBAN length of every country in the SWIFT IBAN registry (ISO 13616).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip


def iban_valid(iban: str) -> bool:
    """ISO 13616 mod-97 check of an IBAN, in either case, grouped or not.

    Groups may be separated by spaces, no-break spaces, dashes or dots.
    """
    s = _IBAN_SEPARATORS.sub("", iban).upper()
    if not 15 <= len(s) <= 34 or not s[:2].isalpha() or not s[2:4].isdigit():
        return False
    rearranged = s[4:] + s[:4]
    try:
        return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1
    except ValueError:
        return False


def _card(m: re.Match[str]) -> str:
    digits = _NOT_DIGIT.sub("", m.group(0))
    return CARD if 13 <= len(digits) <= 19 and luhn_valid(digits) else m.group(0)


def _iban_plausible(text: str) -> bool:
    """Valid check digits; not in canonical upper case, also the shape of a real IBAN.

    Lower-case text is everywhere (ids, hashes, the words after a value): 1 in 97 random
    strings of the right shape passes mod-97.  So a lower- or mixed-case candidate must also
    have the length of its country's IBANs and, when grouped, groups of four (the last one
    shorter): "de89 3704 ... 00 ok" must not take "ok" into the IBAN.
    """
    if not iban_valid(text):
        return False
    compact = _IBAN_SEPARATORS.sub("", text)
    if compact.isupper():
        return True
    if IBAN_LENGTHS.get(compact[:2].upper()) != len(compact):
        return False
    groups = _IBAN_SEPARATORS.split(text)
    return len(groups) == 1 or (all(len(g) == 4 for g in groups[:-1]) and 1 <= len(groups[-1]) <= 4)


def _iban(m: re.Match[str]) -> str:
    text = m.group(0)
    # The pattern may have taken a following word ("... 0130 00 EUR"): drop trailing
    # separated groups until the check digits fit or too little is left.
    while True:
        if _iban_plausible(text):
            return IBAN + m.group(0)[len(text) :]
        cut = max(text.rfind(c) for c in _SP + ".-")
        if cut < 15:
            return m.group(0)
        text = text[:cut]


def _ipv4(m: re.Match[str]) -> str:
    try:
        ipaddress.IPv4Address(m.group(0))
    except ValueError:
        return m.group(0)
    return IP


def _ipv6(m: re.Match[str]) -> str:
    text = m.group(0)
    if not text.strip(":"):
        return text  # a bare "::" in prose
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return text
    return IP


def _phone(m: re.Match[str]) -> str:
    n = len(_NOT_DIGIT.sub("", m.group(0)))
    return PHONE if 8 <= n <= 15 else m.group(0)


def _phone_trunk(m: re.Match[str]) -> str:
    n = len(_NOT_DIGIT.sub("", m.group(0)))
    return PHONE if 9 <= n <= 15 else m.group(0)


def _ssn_context(m: re.Match[str]) -> str:
    start, end = m.span(1)
    return m.group(0)[: start - m.start()] + SSN + m.group(0)[end - m.start() :]


def mask_text(text: str) -> str:
    """Mask every piece of personal data in *text* with its typed marker."""
    n = len(text)
    if n < 3 or text.isalpha():
        return text
    if "@" in text:
        text = _EMAIL_RE.sub(EMAIL, text)
    if ":" in text:
        text = _IPV6_RE.sub(_ipv6, text)
    if n >= 7 and _HAS_DIGIT(text):
        text = _IBAN_RE.sub(_iban, text)
        text = _CARD_RE.sub(_card, text)
        text = _SSN_RE.sub(SSN, text)
        text = _SSN_CONTEXT_RE.sub(_ssn_context, text)
        text = _IPV4_RE.sub(_ipv4, text)
        text = _PHONE_INTL_RE.sub(_phone, text)
        text = _PHONE_NANP_RE.sub(PHONE, text)
        text = _PHONE_TRUNK_RE.sub(_phone_trunk, text)
    return text


# --- the walker ---------------------------------------------------------------------------------

_KEEP = (int, float, bool, type(None))
_CACHE_LIMIT = 10_000


def _keep_text(text: str) -> str:
    return text


class PIIRedactor:
    """The PII rules as an object: call it as a structlog processor, or use :meth:`sanitize`.

    Args:
        keys: names matched anywhere in a key as whole words (default
            :data:`DEFAULT_PII_KEYS`).  Any spelling works: ``"emailAddress"`` is normalised.
        exact_keys: names matched only as the whole key, after leading owner words
            (default :data:`DEFAULT_EXACT_PII_KEYS`).
        extra_keys: added to ``keys`` (the usual way to extend the defaults).
        allow_keys: keys that are never removed even if a rule names them (their values
            are still masked).
        owner_words: leading words stripped before the ``exact_keys`` comparison.
        mask_values: mask personal data inside string values (default ``True``).
        skip_keys: top-level keys of a structlog event that the processor leaves untouched
            (default :data:`DEFAULT_SKIP_KEYS`); :meth:`sanitize` does not use them.

    Instances are thread-safe: the only shared state is a cache of per-key decisions that
    is filled idempotently.
    """

    def __init__(
        self,
        keys: Iterable[str] | None = None,
        *,
        exact_keys: Iterable[str] | None = None,
        extra_keys: Iterable[str] = (),
        allow_keys: Iterable[str] = (),
        owner_words: Iterable[str] | None = None,
        mask_values: bool = True,
        skip_keys: Iterable[str] | None = None,
    ) -> None:
        for label, arg in (("keys", keys), ("exact_keys", exact_keys), ("extra_keys", extra_keys),
                           ("allow_keys", allow_keys), ("owner_words", owner_words),
                           ("skip_keys", skip_keys)):  # fmt: skip
            if isinstance(arg, str | bytes):
                raise TypeError(f"PIIRedactor {label} must be a list of names, not a string")
        base = DEFAULT_PII_KEYS if keys is None else keys
        self.keys = frozenset(normalize_key(k) for k in (*base, *extra_keys)) - {""}
        exact = DEFAULT_EXACT_PII_KEYS if exact_keys is None else exact_keys
        self.exact_keys = frozenset(normalize_key(k) for k in exact) - {""}
        self.allow_keys = frozenset(normalize_key(k) for k in allow_keys)
        owners = DEFAULT_OWNER_WORDS if owner_words is None else owner_words
        self.owner_words = frozenset(normalize_key(w) for w in owners)
        self.skip_keys = frozenset(DEFAULT_SKIP_KEYS if skip_keys is None else skip_keys)
        self.mask_values = mask_values
        self._mask: Callable[[str], str] = mask_text if mask_values else _keep_text
        self._padded = tuple(f"_{k}_" for k in self.keys)
        # key -> masked key, or None when the key is removed
        self._key_cache: dict[str, str | None] = {}

    def __repr__(self) -> str:
        return (
            f"PIIRedactor(keys={len(self.keys)} names, exact_keys={sorted(self.exact_keys)}, "
            f"allow_keys={sorted(self.allow_keys)}, mask_values={self.mask_values})"
        )

    # -- keys

    def is_pii_key(self, key: str) -> bool:
        """Whether a key names personal data (its value would be removed)."""
        norm = normalize_key(key)
        if not norm or norm in self.allow_keys:
            return False
        words = norm.split("_")
        while True:
            if "_".join(words) in self.exact_keys:
                return True
            if len(words) > 1 and words[0] in self.owner_words:
                words = words[1:]
            else:
                break
        padded = f"_{norm}_"
        return any(p in padded for p in self._padded)

    def _key(self, key: str) -> str | None:
        try:
            return self._key_cache[key]
        except KeyError:
            pass
        result = None if self.is_pii_key(key) else self._mask(key)
        cache = self._key_cache
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = result
        return result

    # -- values

    def sanitize(self, data: Any) -> Any:
        """Apply the rules to *data* (any JSON-like value); returns a new object."""
        return self._walk(data)

    def _walk(self, value: Any) -> Any:
        t = type(value)
        if t is str:
            return self._mask(value)
        if t is dict:
            return self._walk_dict(value)
        if t in _KEEP:
            return value
        if t is list:
            return [self._walk(v) for v in value]
        if t is tuple:
            return tuple(self._walk(v) for v in value)
        return self._walk_other(value)

    def _walk_dict(self, data: Mapping[Any, Any]) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        key_of = self._key
        walk = self._walk
        for k, v in data.items():
            if type(k) is str:
                k = key_of(k)
                if k is None:
                    continue
            out[k] = walk(v)
        return out

    def _walk_other(self, value: Any) -> Any:
        """Subclasses of the builtins, numpy values and arbitrary objects."""
        if isinstance(value, str):
            return self._mask(str(value))
        if isinstance(value, bool | int | float):
            return value
        if isinstance(value, Mapping):
            return self._walk_dict(value)
        if isinstance(value, tuple):
            return tuple(self._walk(v) for v in value)
        if isinstance(value, list | set | frozenset):
            return [self._walk(v) for v in value]
        item = getattr(value, "item", None)
        tolist = getattr(value, "tolist", None)
        if tolist is not None and callable(tolist) and getattr(value, "ndim", None):
            return self._walk(tolist())  # numpy array
        if item is not None and callable(item) and type(value).__module__ == "numpy":
            return self._walk(item())  # numpy scalar
        if isinstance(value, numbers.Number):
            if isinstance(value, SupportsFloat):  # Decimal, Fraction
                try:
                    return float(value)
                except (TypeError, ValueError):
                    pass
            return self._mask(str(value))
        if isinstance(value, _dt.date | _dt.time):
            return value.isoformat()
        if isinstance(value, bytes | bytearray):
            return self._mask(bytes(value).decode("utf-8", "replace"))
        return self._mask(str(value))

    # -- structlog processor

    def __call__(self, logger: Any, method_name: str, event_dict: Any) -> Any:
        """structlog processor: a new event dict with PII keys removed and values masked."""
        out = {}
        skip = self.skip_keys
        key_of = self._key
        walk = self._walk
        for k, v in event_dict.items():
            if k in skip:
                out[k] = v
                continue
            if type(k) is str:
                nk = key_of(k)
                if nk is None:
                    continue
                k = nk
            out[k] = walk(v)
        return out


#: The default rules as a ready-made structlog processor.
redact_pii = PIIRedactor()


def sanitize_pii(
    data: Any,
    *,
    keys: Iterable[str] | None = None,
    exact_keys: Iterable[str] | None = None,
    extra_keys: Iterable[str] = (),
    allow_keys: Iterable[str] = (),
    mask_values: bool = True,
) -> Any:
    """A copy of *data* with PII keys removed and PII inside values masked.

    >>> sanitize_pii({"age": 35, "email": "test@example.com"})
    {'age': 35}

    With no options this uses the default rules (:data:`redact_pii`).  Passing options builds
    a :class:`PIIRedactor` per call; on a hot path build one once and call its ``sanitize``.
    """
    if keys is None and exact_keys is None and not extra_keys and not allow_keys and mask_values:
        return redact_pii.sanitize(data)
    redactor = PIIRedactor(
        keys,
        exact_keys=exact_keys,
        extra_keys=extra_keys,
        allow_keys=allow_keys,
        mask_values=mask_values,
    )
    return redactor.sanitize(data)
