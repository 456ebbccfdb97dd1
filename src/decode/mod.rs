//! Raw map contents → labelled samples (spec §5–9).
