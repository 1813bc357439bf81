"""The tamper-evident audit log: one hash-chained JSON line per call, Ed25519-signed checkpoints, rotation
that keeps the chain, and the verifier behind `secretsvc audit verify` (docs/audit.md).

    record.py   the record format: AuditEvent, canonical bytes, the strict parser
    keys.py     the signing and HMAC keys in the data directory
    files.py    the names of the active and rotated files
    writer.py   AuditLog: thread-safe appends, checkpoints, rotation, durability, fail closed
    verify.py   checking a log, and the writer's scan of its own tail at start-up
"""
