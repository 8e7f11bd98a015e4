//! Normalizing objects and comparing them field by field.
