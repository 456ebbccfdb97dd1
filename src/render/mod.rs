//! Pure functions of a [`crate::model::Snapshot`].
