"""Confide's wire model: identifiers, events, validation, signed envelopes. Pure, no I/O."""
