"""Events and sessions as fediverse (ActivityPub) accounts: discovery, signatures, following,
and (docs/federation.md) what is published and accepted. Uses storage and capture's outbound
fetches; the web layer (web/federation.py) serves its addresses."""
