"""Test vectors: a deterministic generator built on the reference, JSON Schemas, and a runner.

Data flows spec -> reference (``pgkms``) -> generator -> ``vectors/*.json`` -> any implementation.
A vector file is self-describing, in the spirit of Wycheproof and C2SP CCTV:

- ``header`` says what the file tests and how its random-looking bytes were derived (``drbg``);
- ``notes`` explains every flag a test carries: what it means, its bug type and the effect of
  failing it (``triage``);
- each test names the requirement IDs it checks, an adapter-protocol ``op`` and its ``input``
  (bytes as lowercase hex), and either the ``expected`` result fields or the ``error`` code;
- a file from elsewhere may say where it comes from (``source``), what its source system did
  (a test's ``observed``) and add flags of its own.

Modules: ``drbg`` (the deterministic byte source), ``canonical`` (file bytes and test ids),
``builder`` (assembling a family, checked against the reference), ``families`` (one module per
vector file), ``schemas`` (one strict JSON Schema per family), ``generate`` (write / check every
file), ``runner`` (run vectors through an adapter), ``composed`` (inputs that stand for two
requests: a startup by passphrase command), ``triage`` (bug types and their order),
``accumulated`` (the hashed many-case family), ``cli`` (``pgkms-conformance vectors``).
Directory listings are ``pgkms_conformance.image``.
"""
