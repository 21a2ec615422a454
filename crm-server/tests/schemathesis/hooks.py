"""Schemathesis hooks of the CRM server's API test (`tests/api/schemathesis.rs`)."""

import re
import uuid

import schemathesis

# The document's pattern of an Idempotency-Key (`http/idempotency.rs`).
VALID_KEY = re.compile(r'^([!#-\[\]-~]{1,255}|"([ !#-\[\]-~]|\\["\\]){1,255}")$')


@schemathesis.hook
def before_call(context, case, kwargs):
    """An Idempotency-Key names one request: a client sends a new one with each new request, and
    the server answers the same key with another body with 422. Schemathesis draws keys from the
    document's pattern and reuses them across bodies, so a key it drew valid is replaced by a fresh
    one; a key it drew invalid (to see it refused) is kept."""
    headers = case.headers or {}
    for name in list(headers):
        value = headers[name]
        if name.lower() == "idempotency-key" and isinstance(value, str) and VALID_KEY.fullmatch(value):
            headers[name] = str(uuid.uuid4())
